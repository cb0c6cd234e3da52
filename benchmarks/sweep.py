"""The concurrency sweep: sync round trips from 1 to 64 caller threads, every call timed.

The same measure serves every system: a system only says how a caller thread
opens its connection (`OpenCaller`): raw pyzmq a DEALER per thread, Pyro5 a
`Proxy` per thread, zmqactors the one shared `RPCClient`.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Final

from benchmarks.common import NS, START_TIMEOUT, SWEEP_THREADS, BenchError, percentile

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    # Run in a caller thread: returns that thread's round trip and what closes it.
    OpenCaller = Callable[[], tuple[Callable[[], object], Callable[[], None]]]

# The fractions at which a round keeps its latency distribution (the CDF the
# plot draws): every percent, then the tail.
CDF_FRACTIONS: Final = (*(i / 100 for i in range(1, 100)), 0.995, 0.999)


def run_threads(
    body: Callable[[int], None], threads: int, barrier: threading.Barrier, timeout: float
) -> None:
    """Run ``body(index)`` in ``threads`` caller threads at once; wait up to ``timeout`` s for each.

    The bodies meet at ``barrier``; a body that fails aborts it, so that no
    other waits there for it. Raises the first body's exception, or
    `BenchError` if a thread does not finish in time.
    """
    errors: list[BaseException] = []

    def guarded(index: int) -> None:
        try:
            body(index)
        except BaseException as exc:  # noqa: BLE001 - re-raised by the measuring thread
            errors.append(exc)
            barrier.abort()

    workers = [
        threading.Thread(target=guarded, args=(i,), name=f"bench-caller-{i}", daemon=True)
        for i in range(threads)
    ]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join(timeout)
    if errors:
        raise errors[0]
    if any(thread.is_alive() for thread in workers):
        raise BenchError(f"a caller thread of {threads} did not finish in time")


def close_nothing() -> None:
    """What a caller that opened nothing of its own closes (a shared client's)."""


def sweep_point(
    open_caller: OpenCaller, threads: int, warmup: float, duration: float
) -> tuple[dict[str, float], list[float]]:
    """Round trips from ``threads`` threads at once: ``warmup`` s, then ``duration`` s timed.

    Each thread opens its caller, makes one round trip (connected before the
    clock starts), waits for the others, then calls in a loop; the calls that
    start within the timed window are timed one by one (`time.perf_counter_ns`).
    Returns ``{"rate", "p50_us", "p99_us"}`` (calls/s, all threads; latency
    percentiles over every timed call) and the latency in µs at each of
    `CDF_FRACTIONS`. Raises the first caller's exception, or `BenchError` if
    a thread does not finish in time.
    """
    clock = time.perf_counter_ns
    window = [0, 0]
    latencies: list[list[int]] = [[] for _ in range(threads)]
    finished = [0] * threads

    def open_window() -> None:
        window[0] = clock() + int(warmup * NS)
        window[1] = window[0] + int(duration * NS)

    barrier = threading.Barrier(threads, action=open_window, timeout=START_TIMEOUT)

    def worker(index: int) -> None:
        call, close = open_caller()
        try:
            call()
            barrier.wait()
            start, end = window
            record = latencies[index].append
            now = clock()
            while now < start:
                call()
                now = clock()
            while now < end:
                call()
                done = clock()
                record(done - now)
                now = done
            finished[index] = now
        finally:
            close()

    run_threads(worker, threads, barrier, warmup + duration + START_TIMEOUT)
    ordered = sorted(latency for per_thread in latencies for latency in per_thread)
    figures = {
        "rate": len(ordered) * NS / max(max(finished) - window[0], 1),
        "p50_us": percentile(ordered, 0.50) / 1000,
        "p99_us": percentile(ordered, 0.99) / 1000,
    }
    return figures, [percentile(ordered, fraction) / 1000 for fraction in CDF_FRACTIONS]


def sweep(
    system: str,
    open_caller: OpenCaller,
    warmup: float,
    duration: float,
    threads: Sequence[int] = SWEEP_THREADS,
) -> tuple[dict[str, float], dict[str, list[float]]]:
    """`sweep_point` at each count of ``threads``: one round's figures and CDFs of ``system``.

    Figures are keyed ``<system>_t<threads>_rate`` (and ``_p50_us``,
    ``_p99_us``), CDFs ``<system>_t<threads>``.
    """
    figures: dict[str, float] = {}
    cdfs: dict[str, list[float]] = {}
    for count in threads:
        point, cdf = sweep_point(open_caller, count, warmup, duration)
        for name, value in point.items():
            figures[f"{system}_t{count}_{name}"] = value
        cdfs[f"{system}_t{count}"] = cdf
    return figures, cdfs
