"""Shutdown in any order: nothing hangs, nothing leaks, every caller gets an outcome."""

from __future__ import annotations

import concurrent.futures
import gc
import threading
import time

import pytest

import zmqactors as za
from zmqactors.transport import _transport

pytestmark = pytest.mark.fork

TIMEOUT = 10.0


class Blocking:
    """An endpoint whose ``block`` runs until released."""

    def __init__(self) -> None:
        self.entered = threading.Semaphore(0)
        self.release = threading.Event()

    def block(self) -> str:
        self.entered.release()
        self.release.wait(TIMEOUT)
        return "finished"

    def ping(self) -> str:
        return "pong"


def new_threads(before: set[str], kit) -> set[str]:
    return set(kit.other_threads()) - before


def test_close_with_servers_running(matchmaker_url, endpoint_class, kit):
    before = set(kit.other_threads())
    transport = za.Transport.from_url(matchmaker_url)
    servers = [
        za.RPCServer(transport, za.Target("close.running", server=f"s{i}"), [endpoint_class()])
        for i in range(3)
    ]
    for server in servers:
        server.start()
    client = za.RPCClient(transport, za.Target("close.running"), timeout=TIMEOUT)
    assert client.call("echo", value=1) == 1
    started = time.monotonic()
    transport.close()
    assert time.monotonic() - started < 5.0
    assert {s.state for s in servers} == {"stopped"}
    kit.wait_until(lambda: not new_threads(before, kit), "the transport's threads to end")
    with pytest.raises(za.TransportClosedError):
        client.call("echo", value=2)
    # Stopping a server of a closed transport is harmless.
    servers[0].stop()
    servers[0].wait(timeout=TIMEOUT)


def test_stop_during_a_long_call_lets_it_finish(matchmaker_url):
    """stop() refuses new calls; the running one finishes and its caller gets the result."""
    endpoint = Blocking()
    with (
        za.Transport.from_url(matchmaker_url) as server_side,
        za.Transport.from_url(matchmaker_url) as client_side,
    ):
        server = za.RPCServer(server_side, za.Target("stop.long"), [endpoint], executor_size=2)
        server.start()
        client = za.RPCClient(client_side, za.Target("stop.long"), timeout=TIMEOUT)
        running = client.call_async("block")
        assert endpoint.entered.acquire(timeout=TIMEOUT)
        server.stop()
        # stop() tells the poller to drain without waiting for it, so a call
        # racing with it may still be served; soon every new call is refused.
        deadline = time.monotonic() + TIMEOUT
        while True:
            try:
                client.call("ping")
            except za.NoRespondersError:
                break
            assert time.monotonic() < deadline, "the stopped server still takes calls"
        with pytest.raises(za.MessagingTimeout):
            server.wait(timeout=0.2)
        endpoint.release.set()
        server.wait(timeout=TIMEOUT)
        assert running.result(timeout=TIMEOUT) == "finished"
        assert server.state == "stopped"


def test_closing_the_server_during_a_long_call_fails_the_call_fast(matchmaker_url, kit):
    """The server's process gives up on a running call: its caller gets an error at once."""
    endpoint = Blocking()
    before = set(kit.other_threads())
    with za.Transport.from_url(matchmaker_url) as client_side:
        server_side = za.Transport.from_url(matchmaker_url)
        server = za.RPCServer(server_side, za.Target("close.long"), [endpoint], executor_size=1)
        server.start()
        client = za.RPCClient(client_side, za.Target("close.long"), timeout=30)
        running = client.call_async("block")
        assert endpoint.entered.acquire(timeout=TIMEOUT)
        started = time.monotonic()
        server.stop()
        server_side.close()
        # The connection to the server is gone: not a 30 s wait for the deadline.
        with pytest.raises(za.MessagingTimeout, match="lost"):
            running.result(timeout=TIMEOUT)
        assert time.monotonic() - started < 5.0
        # The endpoint finishes later; its worker thread must not get stuck replying.
        endpoint.release.set()
    kit.wait_until(lambda: not new_threads(before, kit), "every actor thread to end")


def test_closing_the_callers_transport_during_a_long_call(transport, matchmaker_url):
    """The caller's own transport closes under a running call: TransportClosedError at once."""
    endpoint = Blocking()
    server = za.RPCServer(transport, za.Target("close.caller"), [endpoint], executor_size=1)
    server.start()
    client_side = za.Transport.from_url(matchmaker_url)
    client = za.RPCClient(client_side, za.Target("close.caller"), timeout=30)
    running = client.call_async("block")
    assert endpoint.entered.acquire(timeout=TIMEOUT)
    client_side.close()
    with pytest.raises(za.TransportClosedError):
        running.result(timeout=5.0)
    endpoint.release.set()
    # The server is unharmed: the late reply is dropped, the next call served.
    assert za.RPCClient(transport, za.Target("close.caller")).call("ping") == "pong"
    server.stop()
    server.wait(timeout=TIMEOUT)


def test_close_twice_and_from_many_threads_at_once(matchmaker_url, endpoint_class, kit):
    before = set(kit.other_threads())
    transport = za.Transport.from_url(matchmaker_url)
    server = za.RPCServer(transport, za.Target("close.twice"), [endpoint_class()])
    server.start()
    assert za.RPCClient(transport, za.Target("close.twice")).call("echo", value=1) == 1
    barrier = threading.Barrier(8)

    def close() -> None:
        barrier.wait(TIMEOUT)
        transport.close()

    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        for future in [pool.submit(close) for _ in range(8)]:
            future.result(timeout=TIMEOUT)
    transport.close()
    assert transport.closed
    assert server.state == "stopped"
    kit.wait_until(lambda: not new_threads(before, kit), "the transport's threads to end")


def test_garbage_collection_without_close_ends_every_actor_thread(
    matchmaker_url, endpoint_class, kit
):
    before = set(kit.other_threads())

    def use_and_drop() -> None:
        transport = za.Transport.from_url(matchmaker_url)
        server = za.RPCServer(transport, za.Target("gc"), [endpoint_class()], executor_size=2)
        server.start()
        client = za.RPCClient(transport, za.Target("gc"), timeout=TIMEOUT)
        assert client.call("echo", value=1) == 1
        client.call_async("sleep", seconds=0.2)
        assert new_threads(before, kit)

    use_and_drop()
    gc.collect()
    try:
        kit.wait_until(
            lambda: not new_threads(before, kit), "the dropped transport's threads to end"
        )
    except AssertionError:
        raise AssertionError(new_threads(before, kit)) from None


def test_open_close_cycles_leak_no_threads_or_fds(matchmaker_url, endpoint_class, kit):
    def cycle(i: int) -> None:
        with za.Transport.from_url(matchmaker_url) as transport:
            target = za.Target("cycles", server=f"s{i}")
            with za.RPCServer(transport, target, [endpoint_class()], executor_size=1):
                client = za.RPCClient(transport, za.Target("cycles", server=f"s{i}"))
                assert client.call("echo", value=i) == i

    # One cycle first: the process context and its descriptors are made once.
    cycle(-1)
    threads = set(kit.other_threads())
    kit.wait_until(lambda: set(kit.other_threads()) == threads, "warm-up threads to settle")
    fds = kit.open_fds()
    for i in range(100):
        cycle(i)
    kit.wait_until(lambda: set(kit.other_threads()) <= threads, "the cycles' threads to end")
    # Sockets close asynchronously (ZeroMQ's reaper thread): allow it a moment.
    kit.wait_until(lambda: kit.open_fds() <= fds + 4, f"fds to fall back to {fds}")


def test_an_actor_stopped_twice_answers_both_stoppers(transport):
    """As when an application calls pykka's ActorRegistry.stop_all() while we stop too."""
    endpoint = Blocking()
    server = za.RPCServer(transport, za.Target("stop.twice"), [endpoint], executor_size=1)
    server.start()
    running = za.RPCClient(transport, za.Target("stop.twice")).call_async("block")
    assert endpoint.entered.acquire(timeout=TIMEOUT)
    # The worker is busy: both stop requests wait in its inbox. The pool
    # has as many workers as the largest executor_size: this one.
    (worker,) = transport.runtime().pool
    first = worker.stop(block=False)
    second = worker.stop(block=False)
    endpoint.release.set()
    assert running.result(timeout=TIMEOUT) == "finished"
    assert first.get(timeout=TIMEOUT) is True
    assert second.get(timeout=TIMEOUT) is True


def test_each_server_of_a_process_gets_its_own_inproc_name(matchmaker_url, monkeypatch):
    # A closed transport's inproc endpoints are unbound asynchronously, and a
    # new transport may get the id() of a freed one: server names built from
    # id() then collided ("Address already in use") in open/close cycles.
    monkeypatch.setattr(_transport, "id", lambda _obj: 0x7F00, raising=False)
    names = []
    for _ in range(3):
        with za.Transport.from_url(matchmaker_url) as transport:
            names.append(transport.next_id())
    assert len(set(names)) == 3
