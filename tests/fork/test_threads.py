"""Embedding in a threaded daemon: no eventlet, any thread may call, serve, stop or close."""

from __future__ import annotations

import concurrent.futures
import json
import threading

import pytest

import zmqactors as za

pytestmark = pytest.mark.fork

TIMEOUT = 10.0


def test_no_eventlet_is_ever_imported(matchmaker_url, kit):
    done = kit.run_python(str(kit.SCENARIOS), "no-eventlet", matchmaker_url)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.splitlines()[-1])
    # Nothing green was imported and threading is not monkey-patched.
    assert report == {
        "green": [],
        "patched": {
            "threading.Thread": "threading",
            "socket.socket": "socket",
            "time.sleep": "builtin_function_or_method",
        },
    }


def test_calls_from_64_threads_at_once(transport, serve):
    serve("threads.many", "a", executor_size=4)
    serve("threads.many", "b", executor_size=4)
    client = za.RPCClient(transport, za.Target("threads.many"), timeout=TIMEOUT)
    start = threading.Barrier(64)

    def caller(n: int) -> list[object]:
        start.wait(TIMEOUT)
        return [client.call("echo", value=[n, i]) for i in range(20)]

    with concurrent.futures.ThreadPoolExecutor(max_workers=64) as pool:
        results = list(pool.map(caller, range(64), timeout=60))
    assert results == [[[n, i] for i in range(20)] for n in range(64)]


def test_servers_started_and_stopped_from_other_threads(transport, endpoint_class):
    client = za.RPCClient(transport, za.Target("threads.life"), timeout=TIMEOUT)
    servers = [
        za.RPCServer(
            transport,
            za.Target("threads.life", server=f"s{i}"),
            [endpoint_class(f"s{i}")],
            executor_size=2,
        )
        for i in range(8)
    ]

    def in_thread(func, *args):
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as one:
            return one.submit(func, *args).result(timeout=TIMEOUT)

    # Each server started by one thread, called from another, stopped by a third.
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda s: in_thread(s.start), servers, timeout=30))
        names = list(
            pool.map(lambda i: client.prepare(server=f"s{i}").call("whoami"), range(8), timeout=30)
        )
        assert names == [f"s{i}" for i in range(8)]
        assert {s.state for s in servers} == {"running"}

        def stop(server):
            in_thread(server.stop)
            in_thread(server.wait, TIMEOUT)

        list(pool.map(stop, servers, timeout=30))
    assert {s.state for s in servers} == {"stopped"}
    with pytest.raises(za.NoRespondersError):
        client.call("whoami")
    # And restarted from yet another thread.
    in_thread(servers[0].start)
    assert client.call("whoami") == "s0"
    in_thread(servers[0].stop)
    servers[0].wait(timeout=TIMEOUT)


def test_a_signal_handler_closes_the_transport(matchmaker_url, kit):
    done = kit.run_python(str(kit.SCENARIOS), "signal-close", matchmaker_url)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.splitlines()[-1])
    outcomes = report.pop("outcomes")
    # Both loops made calls, then got TransportClosedError (not a hang, not another error).
    assert isinstance(outcomes["main"], int), outcomes
    assert isinstance(outcomes["thread"], int), outcomes
    assert outcomes["main"] > 0
    assert report == {"closed": True, "server": "stopped", "threads": ["MainThread"]}
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    "where",
    [
        "actors",
        "poller",
        "server-start",
        "server-stop",
    ],
)
def test_a_signal_handler_closes_the_transport_while_the_main_thread_holds_its_locks(
    where, matchmaker_url, kit
):
    """The handler runs in the thread it interrupted: in the middle of starting actors, say."""
    done = kit.run_python(str(kit.SCENARIOS), "signal-close-inside", matchmaker_url, where)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.splitlines()[-1])
    # Starting fails with TransportClosedError; a stop under way just completes.
    outcome = "not closed" if where == "server-stop" else "closed"
    state = "stopped" if where == "server-stop" else "new"
    assert report == {
        "outcome": outcome,
        "closed": True,
        "server": state,
        "threads": ["MainThread"],
    }
