"""Cast figures: casts and fanouts delivered per second, paced by checkpoints."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from benchmarks.common import CALL_TIMEOUT, CAST_BATCH, FANOUT_BATCH, delivery_window, per_s

if TYPE_CHECKING:
    import concurrent.futures
    from collections.abc import Sequence

    import zmqactors as za


def za_casts(client: za.RPCClient, payload: str, duration: float) -> dict[str, float]:
    """``cast`` for ``duration`` s with checkpoint flow control: delivered/s at the server.

    Returns ``rate`` (delivered/s, the server's first-to-last window), ``sent``
    and ``delivered``.
    """
    client.call("sink_reset")
    clock = time.perf_counter
    cast = client.cast
    sent = 0
    previous: concurrent.futures.Future[Any] | None = None
    end = clock() + duration
    while clock() < end:
        for _ in range(CAST_BATCH):
            cast("sink", data=payload)
        sent += CAST_BATCH
        checkpoint = client.call_async("checkpoint")
        if previous is not None:
            previous.result(timeout=CALL_TIMEOUT)
        previous = checkpoint
    if previous is not None:
        previous.result(timeout=CALL_TIMEOUT)
    stats = client.call("sink_stats", expected=sent, wait=CALL_TIMEOUT / 2)
    delivered = float(stats["count"])
    return {
        "rate": delivered / max(float(stats["elapsed"]), 1e-9),
        "sent": float(sent),
        "delivered": delivered,
    }


def za_fanout(
    fanout: za.RPCClient, sinks: Sequence[za.RPCClient], payload: str, duration: float
) -> dict[str, float]:
    """Fanout ``cast`` for ``duration`` s with checkpoint flow control: delivered/s at ``sinks``.

    ``sinks`` are clients of each server the fanout reaches, by server name.
    Returns ``rate`` (fanouts/s that every server got, which is also each
    server's messages/s), ``total_rate`` (messages/s, all servers), ``sent``
    and ``delivered`` (messages, all servers).
    """
    for sink in sinks:
        sink.call("sink_reset")
    clock = time.perf_counter
    cast = fanout.cast
    sent = 0
    previous: list[concurrent.futures.Future[Any]] = []
    end = clock() + duration
    while clock() < end:
        for _ in range(FANOUT_BATCH):
            cast("sink", data=payload)
        sent += FANOUT_BATCH
        # Each checkpoint follows the batch on the socket to its server.
        checkpoints = [sink.call_async("checkpoint") for sink in sinks]
        for future in previous:
            future.result(timeout=CALL_TIMEOUT)
        previous = checkpoints
    for future in previous:
        future.result(timeout=CALL_TIMEOUT)
    stats = [sink.call_async("sink_stats", expected=sent, wait=CALL_TIMEOUT / 2) for sink in sinks]
    window = delivery_window([future.result(timeout=CALL_TIMEOUT) for future in stats])
    return {
        "rate": per_s(window["smallest"], window["window"]),
        "total_rate": per_s(window["total"], window["window"]),
        "sent": float(sent * len(sinks)),
        "delivered": window["total"],
    }
