"""The zmqactors server and sink processes: echo, counting sinks, listeners."""

from __future__ import annotations

import os
import threading
import time
from typing import TYPE_CHECKING, Any

import zmqactors as za
from benchmarks.common import (
    CURVE_TOPIC,
    POOL,
    SERVER,
    SINK_TOPIC,
    STOP_TIMEOUT,
    TOPIC,
    peak_rss_mib,
    shared_clock,
    sink_name,
    sink_notify_topics,
)
from benchmarks.processes import run_child, send_result, wait_for_stop

if TYPE_CHECKING:
    from collections.abc import Sequence
    from multiprocessing.connection import Connection


class BenchEndpoint:
    """The benchmark server's endpoint: an echo, and a counting sink for casts.

    Its methods run on the server's listener threads, so the sink is locked.
    A sink process's notification endpoint counts into the same sink.
    """

    def __init__(self, transport: za.Transport | None = None) -> None:
        self._transport = transport
        self._changed = threading.Condition()
        self._count = 0
        self._first = 0.0
        self._last = 0.0

    def echo(self, data: str) -> str:
        """Return ``data``."""
        return data

    def sink(self, data: str) -> None:
        """Count one delivered cast (or notification) and when it arrived."""
        del data
        now = shared_clock()
        with self._changed:
            if not self._count:
                self._first = now
            self._count += 1
            self._last = now
            self._changed.notify_all()

    def sink_reset(self) -> None:
        """Start a new round of counting casts."""
        with self._changed:
            self._count = 0
            self._first = self._last = 0.0

    def checkpoint(self) -> int:
        """The casts counted so far (the cast client's flow control)."""
        with self._changed:
            return self._count

    def sink_stats(self, expected: int, wait: float) -> dict[str, float]:
        """Wait up to ``wait`` s for ``expected`` casts; return their count, first and last.

        ``first`` and ``last`` are `shared_clock` times; ``elapsed`` is last - first.
        """
        deadline = time.monotonic() + wait
        with self._changed:
            while self._count < expected:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._changed.wait(left)
            return {
                "count": float(self._count),
                "first": self._first,
                "last": self._last,
                "elapsed": self._last - self._first,
            }

    def transport_stats(self) -> dict[str, int]:
        """The transport counters of this process (what it dropped or refused)."""
        return dict(self._transport.stats.snapshot()) if self._transport is not None else {}

    def rss_mib(self) -> float:
        """The server process's peak RSS in MiB."""
        return peak_rss_mib()


class NotificationSink:
    """A notification endpoint that counts every ``info`` notification into a `BenchEndpoint`."""

    def __init__(self, counter: BenchEndpoint) -> None:
        self._counter = counter

    def info(
        self, publisher_id: str, event_type: str, payload: Any, metadata: dict[str, Any]
    ) -> None:
        """Count one delivered notification."""
        del publisher_id, event_type, metadata
        self._counter.sink(payload)


def _serve(
    conn: Connection, services: Sequence[za.RPCServer | za.NotificationListener], limit: float
) -> None:
    """Start ``services``, report ready, serve until told to stop (``limit`` s at most), stop.

    The ``ready`` message carries the first service's address and this process's id.
    """
    for service in services:
        service.start()
    send_result(conn, "ready", {"address": services[0].address, "pid": os.getpid()})
    wait_for_stop(conn, limit)
    for service in services:
        service.stop()
    for service in services:
        service.wait(timeout=STOP_TIMEOUT)


def za_server_main(conn: Connection, url: str, limit: float, curve_url: str) -> None:
    """Server process for zmqactors: an `RPCServer` of `BenchEndpoint` on ``url``'s matchmaker.

    A second one serves the same endpoint on a CURVE transport (``curve_url``,
    topic `CURVE_TOPIC`). Sends ``("ready", {"address": ..., "pid": ...})`` once both are
    registered, serves until told to stop (at most ``limit`` seconds), then
    sends ``("result", {"rss_mib": ...})``.
    """

    def body() -> None:
        with (
            za.Transport.from_url(url) as transport,
            za.Transport.from_url(curve_url) as curve_transport,
        ):
            endpoint = BenchEndpoint(transport)
            servers = [
                za.RPCServer(transport, za.Target(topic=TOPIC, server=SERVER), [endpoint]),
                za.RPCServer(
                    curve_transport, za.Target(topic=CURVE_TOPIC, server=SERVER), [endpoint]
                ),
            ]
            _serve(conn, servers, limit)
        send_result(conn, "result", {"rss_mib": peak_rss_mib()})

    run_child(conn, body)


def za_sink_main(conn: Connection, url: str, index: int, limit: float) -> None:
    """Sink process ``index`` for zmqactors: fanout server, control server and listeners.

    Hosts an `RPCServer` named `sink_name` on the fanout topic, serving a
    `BenchEndpoint`, and, if `sink_notify_topics` gives it topics, a
    `NotificationListener` in pool `POOL` counting into the same endpoint.
    Sends ``("ready", {"address": ...})`` once both are registered, serves
    until told to stop (at most ``limit`` seconds), then sends
    ``("result", {"rss_mib": ...})``.
    """

    def body() -> None:
        with za.Transport.from_url(url) as transport:
            endpoint = BenchEndpoint(transport)
            services: list[za.RPCServer | za.NotificationListener] = [
                za.RPCServer(
                    transport, za.Target(topic=SINK_TOPIC, server=sink_name(index)), [endpoint]
                )
            ]
            topics = sink_notify_topics(index)
            if topics:
                services.append(
                    za.NotificationListener(
                        transport,
                        [za.Target(topic) for topic in topics],
                        [NotificationSink(endpoint)],
                        pool=POOL,
                    )
                )
            _serve(conn, services, limit)
        send_result(conn, "result", {"rss_mib": peak_rss_mib()})

    run_child(conn, body)
