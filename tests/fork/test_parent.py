"""A transport keeps working in the parent however often, and whenever, the process forks."""

from __future__ import annotations

import os
import threading
import time

import pytest

import zmqactors as za
from zmqactors.net.context import get_context

pytestmark = pytest.mark.fork

TIMEOUT = 10.0


def test_parent_keeps_working_after_many_forks(transport, serve, fork_child, kit):
    server = serve("parent.many", "p")
    client = za.RPCClient(transport, za.Target("parent.many"), timeout=TIMEOUT)
    assert client.call("echo", value="before") == "before"
    actors = transport._holder.actors
    context = get_context()
    threads = kit.other_threads()

    def idle(_channel):
        return "idle"

    def calls_and_closes(_channel):
        # The inherited transport, used and closed in the child.
        result = client.call("echo", value="from child")
        transport.close()
        return result

    def serves_and_exits(_channel):
        # Leaves a running server and live actors behind: os._exit must not care.
        mine = za.RPCServer(transport, za.Target("parent.many.child"), [object()])
        mine.start()
        return mine.state

    bodies = [idle, calls_and_closes, serves_and_exits]
    for i in range(15):
        body = bodies[i % len(bodies)]
        report = fork_child(body).join()
        assert report == {"idle": "idle", "calls_and_closes": "from child"}.get(
            body.__name__, "running"
        )
        assert client.call("echo", value=i) == i
    # The parent's own objects are the ones it started with.
    assert transport._holder.actors is actors
    assert get_context() is context
    assert not context.closed
    assert server.state == "running"
    assert client.prepare(server="p").call("whoami") == "p"
    assert kit.other_threads() == threads


class Callers:
    """Threads that call (four at a time) and cast in a loop until stopped."""

    def __init__(self, client: za.RPCClient, count: int) -> None:
        self.client = client
        self.errors: list[str] = []
        self.latencies: list[float] = []
        self.bursts = [0] * count
        self.casts = [0] * count
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(n,)) for n in range(count)]
        for thread in self._threads:
            thread.start()

    def _burst(self, n: int, i: int) -> None:
        started = time.monotonic()
        futures = [self.client.call_async("echo", value=[n, i, k]) for k in range(4)]
        self.client.cast("record", value=[n, i])
        self.casts[n] += 1
        for k, future in enumerate(futures):
            if future.result(timeout=TIMEOUT) != [n, i, k]:
                self.errors.append(f"wrong reply for {[n, i, k]}")
        self.latencies.append(time.monotonic() - started)
        self.bursts[n] += 1

    def _run(self, n: int) -> None:
        i = 0
        while not self._stop.is_set():
            try:
                self._burst(n, i)
            except Exception as exc:  # noqa: BLE001 - every failure is a test failure
                self.errors.append(f"{type(exc).__name__}: {exc}")
            i += 1

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(TIMEOUT)
        assert not any(thread.is_alive() for thread in self._threads)


def test_fork_with_calls_in_flight(transport, serve, fork_child):
    """50 forks while four threads call and cast: nothing lost, nothing stalls."""
    serve("parent.busy", "p")
    client = za.RPCClient(transport, za.Target("parent.busy"), timeout=TIMEOUT)
    client.call("echo", value="warm-up")

    def child(_channel):
        # The child's first use of the inherited transport, with the parent busy.
        return client.call("pid") == os.getppid()

    callers = Callers(client, 4)
    try:
        for _ in range(50):
            before = sum(callers.bursts)
            assert fork_child(child).join() is True
            # The parent's callers keep making progress across the fork.
            deadline = time.monotonic() + TIMEOUT
            while sum(callers.bursts) <= before and not callers.errors:
                assert time.monotonic() < deadline, "the parent's calls stalled after a fork"
                time.sleep(0.001)
    finally:
        callers.stop()
    assert callers.errors == []
    assert min(callers.bursts) > 0
    # A stall would show as a slow burst well before it became a timeout.
    assert max(callers.latencies) < 5.0, f"a burst took {max(callers.latencies):.2f}s"
    # Every cast arrived, once (the in-process server records them).
    sent = sum(callers.casts)
    deadline = time.monotonic() + TIMEOUT
    while len(recorded := client.call("recorded")) < sent:
        assert time.monotonic() < deadline, f"{len(recorded)} of {sent} casts arrived"
        time.sleep(0.01)
    assert len(recorded) == sent
    assert len({tuple(r) for r in recorded}) == sent
