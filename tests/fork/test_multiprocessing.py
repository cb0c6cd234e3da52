"""multiprocessing (fork, forkserver, spawn), ProcessPoolExecutor and pre-fork workers."""

from __future__ import annotations

import collections
import concurrent.futures
import multiprocessing
import os
import threading
import time

import pytest

import zmqactors as za

pytestmark = pytest.mark.fork

TIMEOUT = 10.0
# A spawned or forkserver child imports zmqactors afresh: allow for a loaded machine.
START_TIMEOUT = 30.0
METHODS = ["fork", "forkserver", "spawn"]


def served_here(serve, transport: za.Transport, topic: str) -> za.RPCClient:
    """Serve ``topic`` in this, the parent, process; a client that saw it answer."""
    serve(topic, "parent")
    client = za.RPCClient(transport, za.Target(topic), timeout=TIMEOUT)
    assert client.call("pid") == os.getpid()
    return client


@pytest.mark.parametrize("method", METHODS)
def test_multiprocessing_child_calls_serves_and_exits(method, transport, serve, scenarios, kit):
    client = served_here(serve, transport, "mp.parent")
    # With "fork" the child inherits scenarios.TRANSPORT; the others build their own.
    matchmaker_url = transport.settings.matchmaker.url
    context = multiprocessing.get_context(method)
    receiver, sender = context.Pipe(duplex=False)
    proc = context.Process(target=scenarios.mp_target, args=(sender, matchmaker_url, "mp.parent"))
    with kit.fork_warning_ignored():
        proc.start()
    sender.close()
    try:
        assert receiver.poll(START_TIMEOUT), "the child sent nothing"
        report = receiver.recv()
        # Returning from the target ends the child, actors running or not.
        started = time.monotonic()
        proc.join(TIMEOUT)
        assert time.monotonic() - started < TIMEOUT
        assert proc.exitcode == 0
    finally:
        if proc.is_alive():
            proc.kill()
            proc.join(TIMEOUT)
        receiver.close()
    assert report == {
        "pid": proc.pid,
        "inherited": method == "fork",
        "parent": os.getpid(),
        "own": proc.pid,
    }
    assert client.call("pid") == os.getpid()


@pytest.mark.parametrize("method", METHODS)
def test_process_pool_executor(method, transport, serve, scenarios, kit):
    client = served_here(serve, transport, "pool.parent")
    matchmaker_url = transport.settings.matchmaker.url
    pool = concurrent.futures.ProcessPoolExecutor(
        max_workers=2, mp_context=multiprocessing.get_context(method)
    )
    try:
        with kit.fork_warning_ignored():
            futures = [
                pool.submit(scenarios.pool_task, matchmaker_url, "pool.parent", n) for n in range(8)
            ]
        results = [future.result(timeout=START_TIMEOUT) for future in futures]
    finally:
        # shutdown() has no timeout of its own: give it one.
        closer = threading.Thread(target=pool.shutdown, kwargs={"wait": True})
        closer.start()
        closer.join(START_TIMEOUT)
        assert not closer.is_alive(), "the pool's workers did not exit"
    assert [r["n"] for r in results] == list(range(8))
    assert {r["server"] for r in results} == {os.getpid()}
    assert {r["inherited"] for r in results} == {method == "fork"}
    assert os.getpid() not in {r["worker"] for r in results}
    assert client.call("pid") == os.getpid()


def test_prefork_workers_share_the_load(transport, fork_child, endpoint_class, kit):
    """The parent makes the transport and the server, then forks three workers that serve."""
    client = za.RPCClient(transport, za.Target("prefork"), timeout=TIMEOUT)
    # The parent has used the transport (its actors run) before it forks.
    with pytest.raises(za.NoRespondersError):
        client.call("pid")
    server = za.RPCServer(transport, za.Target("prefork"), [endpoint_class()], executor_size=2)

    def worker(channel):
        server.start()
        channel.send(server.address)
        assert channel.recv(timeout=60) == "stop"
        server.stop()
        server.wait(timeout=TIMEOUT)
        transport.close()
        kit.wait_until(lambda: not kit.other_threads(), "the worker's threads to end")
        return {"state": server.state}

    workers = [fork_child(worker) for _ in range(3)]
    addresses = {w.recv() for w in workers}
    assert len(addresses) == 3
    served = collections.Counter(client.call("pid") for _ in range(60))
    assert set(served) == {w.pid for w in workers}
    assert min(served.values()) >= 10, served
    for w in workers:
        w.send("stop")
    for w in workers:
        assert w.join() == {"state": "stopped"}
    # They unregistered as they stopped (a fresh lookup finds nobody); the
    # parent never served.
    with za.Transport(transport.settings) as fresh, pytest.raises(za.NoRespondersError):
        za.RPCClient(fresh, za.Target("prefork")).call("pid")
    assert server.state == "new"
