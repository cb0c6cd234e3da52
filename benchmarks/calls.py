"""Call figures: sync calls from one thread and from many, ``call_async`` pipelined."""

from __future__ import annotations

import collections
import functools
import threading
import time
from typing import TYPE_CHECKING, Any

from benchmarks.common import (
    CALL_TIMEOUT,
    CALLER_THREADS,
    PIPELINE_DEPTH,
    START_TIMEOUT,
    round_trips,
)
from benchmarks.sweep import run_threads

if TYPE_CHECKING:
    import concurrent.futures

    import zmqactors as za


def za_sync_calls(client: za.RPCClient, payload: str, duration: float) -> dict[str, float]:
    """Sync ``call`` from one thread for ``duration`` s: rate/s, p50/p99 µs."""
    return round_trips(functools.partial(client.call, "echo", data=payload), duration)


def za_threaded_calls(
    client: za.RPCClient, payload: str, duration: float, threads: int = CALLER_THREADS
) -> float:
    """Sync ``call`` from ``threads`` threads at once for ``duration`` s: calls/s in total."""
    clock = time.perf_counter
    counts = [0] * threads
    finished = [0.0] * threads
    window = {"start": 0.0, "end": 0.0}

    def open_window() -> None:
        window["start"] = clock()
        window["end"] = window["start"] + duration

    barrier = threading.Barrier(threads, action=open_window, timeout=START_TIMEOUT)

    def worker(index: int) -> None:
        barrier.wait()
        end = window["end"]
        call = client.call
        count = 0
        now = clock()
        while now < end:
            call("echo", data=payload)
            count += 1
            now = clock()
        counts[index] = count
        finished[index] = now

    run_threads(worker, threads, barrier, duration + START_TIMEOUT)
    return sum(counts) / (max(finished) - window["start"])


def za_async_calls(
    client: za.RPCClient, payload: str, duration: float, depth: int = PIPELINE_DEPTH
) -> float:
    """``call_async`` with ``depth`` outstanding from one thread for ``duration`` s: calls/s.

    Waits for the oldest call and then sends one more, so between ``depth - k``
    and ``depth`` calls are outstanding when replies come out of order.
    """
    clock = time.perf_counter
    call_async = client.call_async
    pending: collections.deque[concurrent.futures.Future[Any]] = collections.deque(
        call_async("echo", data=payload) for _ in range(depth)
    )
    count = 0
    start = now = clock()
    end = start + duration
    while now < end:
        pending.popleft().result(timeout=CALL_TIMEOUT)
        count += 1
        pending.append(call_async("echo", data=payload))
        now = clock()
    while pending:
        pending.popleft().result(timeout=CALL_TIMEOUT)
    return count / (now - start)
