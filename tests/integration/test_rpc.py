"""RPC between processes on TCP loopback, discovered through a real file matchmaker."""

from __future__ import annotations

import collections
import concurrent.futures
import subprocess
import sys
import threading
import time

import pytest
from oslo_config import cfg

import zmqactors as za
from zmqactors import options

pytestmark = [pytest.mark.integration, pytest.mark.both_families]

TOPIC = "calc.v1"


@pytest.fixture
def client(transport):
    return za.RPCClient(transport, za.Target(TOPIC), timeout=10)


def test_call_cast_direct_and_context(spawn_server, client):
    spawn_server(TOPIC, "node-1@backend#pool")
    assert client.call("add", a=2, b=40) == 42
    assert client.call("echo", value={"nested": [1, "two", None, b"\x00"]}) == {
        "nested": [1, "two", None, b"\x00"]
    }
    direct = client.prepare(server="node-1@backend#pool", context={"user": "u1"})
    assert direct.call("whoami") == "node-1@backend#pool"
    assert direct.call("context") == {"user": "u1"}
    assert client.call("context") == {}  # prepare() left the original unchanged

    client.cast("record", value="one")
    client.cast("record", value="two")
    deadline = time.monotonic() + 10
    # Casts run on several listener threads: each arrives once, in any order.
    while sorted(client.call("recorded")) != ["one", "two"]:
        assert time.monotonic() < deadline, "casts not delivered within 10 s"


def test_remote_exception_carries_type_and_message(spawn_server, client):
    spawn_server(TOPIC, "node-1")
    with pytest.raises(za.RemoteError) as info:
        client.call("fail", message="bad thing")
    assert info.value.exc_type == "builtins.ValueError"
    assert info.value.value == "bad thing"
    # Kept on the server unless it sends them (test_server_surface.py).
    assert info.value.traceback == ""


def test_no_such_method(spawn_server, client):
    spawn_server(TOPIC, "node-1")
    with pytest.raises(za.NoSuchMethod):
        client.call("does_not_exist")
    with pytest.raises(ValueError, match="_private"):
        client.call("_private")


def test_timeout_raises_within_timeout_plus_half_a_second(spawn_server, client):
    spawn_server(TOPIC, "node-1")
    started = time.monotonic()
    with pytest.raises(za.MessagingTimeout):
        client.prepare(timeout=0.5).call("sleep", seconds=3)
    elapsed = time.monotonic() - started
    assert 0.5 <= elapsed < 1.0
    # The late reply arrives later and is dropped and counted, not handed to
    # the next call.
    assert client.call("add", a=1, b=1) == 2
    deadline = time.monotonic() + 10
    while client.transport.stats.snapshot().get("late_replies", 0) < 1:
        assert time.monotonic() < deadline, "late reply was not counted"
        time.sleep(0.05)


def test_no_responders_raises_at_once(client):
    started = time.monotonic()
    with pytest.raises(za.NoRespondersError, match=TOPIC):
        client.call("add", a=1, b=2)
    with pytest.raises(za.NoRespondersError):
        client.cast("record", value=1)
    assert time.monotonic() - started < 0.5


def test_calls_spread_over_servers_and_direct_calls_stay(spawn_server, client):
    servers = [spawn_server(TOPIC, f"node-{i}") for i in range(2)]
    seen = collections.Counter(client.call("whoami") for _ in range(40))
    assert set(seen) == {"node-0", "node-1"}
    for proc in servers:
        direct = client.prepare(server=proc.server)
        assert {direct.call("whoami") for _ in range(10)} == {proc.server}
    with pytest.raises(za.NoRespondersError):
        client.prepare(server="node-9").call("whoami")


def test_stopped_server_is_not_called(spawn_server, client):
    proc = spawn_server(TOPIC, "node-1")
    assert client.call("whoami") == "node-1"
    assert proc.stop() == 0
    with pytest.raises(za.NoRespondersError):
        client.prepare(server="node-1").call("whoami")


def test_many_threads_each_get_their_own_replies(spawn_server, client):
    spawn_server(TOPIC, "node-1")
    spawn_server(TOPIC, "node-2")

    def worker(n: int) -> list[bool]:
        return [client.call("echo", value=[n, i]) == [n, i] for i in range(100)]

    with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(worker, range(16), timeout=60))
    assert all(all(r) for r in results)


def test_call_async_many_outstanding(spawn_server, client):
    spawn_server(TOPIC, "node-1")
    futures = [client.call_async("add", a=i, b=1) for i in range(500)]
    assert [f.result(timeout=30) for f in futures] == [i + 1 for i in range(500)]


def test_server_in_the_same_process_is_reachable_right_after_start(transport):
    class Endpoint:
        def ping(self) -> str:
            return "pong"

    client = za.RPCClient(transport, za.Target("same.process"), timeout=5)
    for i in range(10):
        server = za.RPCServer(transport, za.Target("same.process", server=f"s{i}"), [Endpoint()])
        server.start()
        try:
            assert client.prepare(server=f"s{i}").call("ping") == "pong"
        finally:
            server.stop()
            server.wait(timeout=10)
        with pytest.raises(za.NoRespondersError):
            client.prepare(server=f"s{i}").call("ping")


class Blocking:
    """``block`` waits for ``release`` (at most 20 s); ``ping`` answers at once."""

    def __init__(self, release: threading.Event) -> None:
        self.release = release

    def block(self) -> bool:
        return self.release.wait(timeout=20)

    def ping(self) -> str:
        return "pong"


def blocking_server(
    transport: za.Transport, topic: str, *, executor_size: int
) -> tuple[za.RPCServer, threading.Event]:
    """A server "s" of a `Blocking` endpoint on ``topic``, not started; the event releasing it."""
    release = threading.Event()
    server = za.RPCServer(
        transport, za.Target(topic, server="s"), [Blocking(release)], executor_size=executor_size
    )
    return server, release


def test_slow_endpoint_does_not_block_other_calls(transport):
    server, release = blocking_server(transport, "slow", executor_size=2)
    with server:
        client = za.RPCClient(transport, za.Target("slow"), timeout=10)
        blocked = client.call_async("block")
        assert client.call("ping") == "pong"
        release.set()
        assert blocked.result(timeout=10) is True


def test_an_answer_is_not_held_behind_a_slow_call_on_the_same_listener(transport):
    # One listener: under a burst the poller hands it the next requests in
    # advance, so "block" may already be queued there when "ping" finishes.
    server, release = blocking_server(transport, "held", executor_size=1)
    with server:
        client = za.RPCClient(transport, za.Target("held"), timeout=30)
        try:
            for _ in range(20):
                first = client.call_async("ping")
                blocked = client.call_async("block")
                last = client.call_async("ping")
                # The first ping's answer goes out before "block" runs.
                assert first.result(timeout=5) == "pong"
                release.set()
                assert blocked.result(timeout=10) is True
                assert last.result(timeout=10) == "pong"
                release.clear()
        finally:
            release.set()


def test_close_fails_pending_calls_at_once(transport):
    release = threading.Event()

    class Endpoint:
        def block(self) -> bool:
            return release.wait(timeout=20)

    server_transport = za.Transport(transport.settings)
    server = za.RPCServer(server_transport, za.Target("closing", server="s"), [Endpoint()])
    server.start()
    try:
        client = za.RPCClient(transport, za.Target("closing"), timeout=30)
        pending = client.call_async("block")
        started = time.monotonic()
        transport.close()
        with pytest.raises(za.TransportClosedError):
            pending.result(timeout=10)
        assert time.monotonic() - started < 5
        with pytest.raises(za.TransportClosedError):
            client.call("block")
        transport.close()  # twice is fine
    finally:
        release.set()
        server_transport.close()


def test_stop_refuses_new_calls_and_wait_lets_running_ones_finish(transport):
    entered = threading.Event()
    release = threading.Event()

    class Endpoint:
        def block(self) -> str:
            entered.set()
            release.wait(timeout=20)
            return "finished"

    server = za.RPCServer(transport, za.Target("draining", server="s"), [Endpoint()])
    server.start()
    client = za.RPCClient(transport, za.Target("draining"), timeout=10)
    running = client.call_async("block")
    assert entered.wait(timeout=10)
    server.stop()
    with pytest.raises(za.MessagingTimeout):
        server.wait(timeout=0.2)
    release.set()
    server.wait(timeout=10)
    assert running.result(timeout=10) == "finished"
    assert server.state == "stopped"


def test_bad_targets_and_urls_get_clear_errors():
    with pytest.raises(ValueError, match="topic"):
        za.Target("has space")
    with pytest.raises(ValueError, match="server"):
        za.Target("ok", server="a/b")
    with pytest.raises(za.ConfigurationError, match="timeot"):
        za.Transport.from_url("zmq://?timeot=2")
    with pytest.raises(za.ConfigurationError, match="scheme"):
        za.Transport.from_url("http://example")
    with pytest.raises(za.ConfigurationError, match="not-a-directory"):
        za.Transport.from_url("zmq+file:///dev/null/not-a-directory")


def test_from_conf_reads_the_zmq_group(matchmaker_url):
    conf = cfg.ConfigOpts()
    options.register_opts(conf)
    conf([])
    conf.set_override("matchmaker_url", matchmaker_url, group="zmq")
    conf.set_override("executor_size", 3, group="zmq")
    conf.set_override("timeout", 7.5, group="zmq")
    with za.Transport.from_conf(conf) as transport:
        assert transport.settings.executor_size == 3
        assert za.RPCClient(transport, za.Target("t")).timeout == 7.5


def test_query_parameters_override_options(matchmaker_url, with_query):
    url = with_query(matchmaker_url, "timeout=2&executor_size=4")
    with za.Transport.from_url(url) as transport:
        assert transport.settings.timeout == 2.0
        assert transport.settings.executor_size == 4


def test_cast_just_before_exit_is_delivered(spawn_server, client, matchmaker_url):
    # The casting process closes its transport and exits at once: what it
    # queued must still leave before it is gone.
    spawn_server(TOPIC, "node-1")
    script = (
        "import sys, zmqactors as za\n"
        "with za.Transport.from_url(sys.argv[1]) as t:\n"
        "    c = za.RPCClient(t, za.Target(sys.argv[2]))\n"
        "    for i in range(100): c.cast('record', value=i)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, matchmaker_url, TOPIC],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    deadline = time.monotonic() + 10
    while sorted(client.call("recorded")) != list(range(100)):
        assert time.monotonic() < deadline, f"got {len(client.call('recorded'))} of 100 casts"
