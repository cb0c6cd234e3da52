"""Notification figures: to one listener and to a pool, paced on the listeners' counts."""

from __future__ import annotations

import contextlib
import time
from typing import TYPE_CHECKING, Any

from benchmarks.common import (
    CALL_TIMEOUT,
    CAST_BATCH,
    EVENT_TYPE,
    BenchError,
    delivery_window,
    per_s,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    import zmqactors as za


def _sink_reports(sinks: Sequence[za.RPCClient], expected: int, wait: float) -> list[Any]:
    """Each sink's `BenchEndpoint.sink_stats`, asked of all at once."""
    futures = [sink.call_async("sink_stats", expected=expected, wait=wait) for sink in sinks]
    return [future.result(timeout=CALL_TIMEOUT + wait) for future in futures]


def _await_delivered(
    sinks: Sequence[za.RPCClient], at_least: int, since: float, timeout: float
) -> int:
    """Poll the sinks' counts until together they reach ``at_least``; return the sum.

    Sleeps between polls about as long as the rest should take at the rate
    delivered since ``since`` (`time.perf_counter`), so that polling costs the
    listeners little. Raises `BenchError` after ``timeout`` seconds.
    """
    clock = time.perf_counter
    deadline = clock() + timeout
    while True:
        futures = [sink.call_async("checkpoint") for sink in sinks]
        counted = sum(int(future.result(timeout=CALL_TIMEOUT)) for future in futures)
        if counted >= at_least:
            return counted
        now = clock()
        if now > deadline:
            raise BenchError(f"listeners counted {counted} notifications, expected {at_least}")
        rate = max(counted / max(now - since, 1e-3), 1000.0)
        time.sleep(min(0.01, max(0.0002, (at_least - counted) / rate)))


def za_notifications(
    notifier: za.Notifier, sinks: Sequence[za.RPCClient], payload: str, duration: float
) -> dict[str, float]:
    """``notifier.info`` for ``duration`` s, paced on the listeners' counts: delivered/s.

    ``sinks`` are clients of the RPC servers in the listeners' processes,
    which count what their listener got. After every `CAST_BATCH`
    notifications the client waits until all but the last batch have been
    counted. Returns ``rate`` (delivered/s, all listeners' first-to-last
    window), ``sent``, ``delivered`` and ``smallest_share`` (the fraction of
    the notifications the least loaded listener got).
    """
    for sink in sinks:
        sink.call("sink_reset")
    clock = time.perf_counter
    info = notifier.info
    sent = batches = 0
    start = clock()
    end = start + duration
    while clock() < end:
        for _ in range(CAST_BATCH):
            sent += info(EVENT_TYPE, payload)
        batches += 1
        if sent != batches * CAST_BATCH:
            raise BenchError(f"{notifier!r} reached {sent} listeners in {batches} batches")
        _await_delivered(sinks, sent - CAST_BATCH, start, CALL_TIMEOUT / 2)
    with contextlib.suppress(BenchError):  # a shortfall is reported as lost, below
        _await_delivered(sinks, sent, start, CALL_TIMEOUT / 2)
    window = delivery_window(_sink_reports(sinks, 0, 0.0))
    return {
        "rate": per_s(window["total"], window["window"]),
        "sent": float(sent),
        "delivered": window["total"],
        "smallest_share": window["smallest"] / max(window["total"], 1.0),
    }
