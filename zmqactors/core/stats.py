"""Counters of what a transport dropped or refused, so nothing is lost silently.

Also each server's own counters and handling-time histogram (`ServerStats`),
which its ``stats`` service method, the CLI and the Prometheus collector read.
"""

from __future__ import annotations

import bisect
import collections
import dataclasses
import threading
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["HANDLING_BUCKETS", "HistogramSnapshot", "ServerStats", "Stats"]


class Stats:
    """Named counters, incremented from any actor thread, read as a snapshot.

    Counted: ``late_replies`` (a reply after its call timed out or ended),
    ``misrouted_replies`` (a reply or heartbeat for a pending call that came
    from another connection than the one the call was sent on),
    ``protocol_errors`` (frames that did not decode), ``send_failures``
    (a message ZeroMQ refused to queue: a notification or oslo driver message
    at a full send queue), ``send_queue_full`` (times a send queue was found
    full: messages then wait), ``casts_unsent`` (casts still waiting when
    their server became unreachable), ``ack_retries`` (acknowledged casts sent
    again), ``duplicates_dropped`` (copies of an acknowledged cast a server did
    not run again), ``misrouted`` (a request for a target the receiving server
    does not serve), ``rejected_stopping`` (requests that reached a stopping
    server), ``not_served`` (requests for a destination no server of the
    transport serves: a stale route or a stopped server; a call is answered
    `NoRespondersError`), ``expired_dropped`` (calls and acknowledged casts
    dropped unrun because their timeout passed while they were queued),
    ``busy_refused`` (requests refused past ``max_queued_per_client`` or
    ``max_queued_bytes``: a call is answered `ServerBusyError`, a cast is
    dropped), ``reads_paused`` (times a client's casts past
    ``max_queued_per_client`` made the server stop reading),
    ``unreachable_servers`` (connections refused or lost),
    ``retried_not_run`` (calls and casts to a topic sent to another server
    because nothing ran where they went), ``idle_connections_closed`` (a
    client's connections closed after ``connection_idle_timeout``),
    ``resource_limit_errors`` (a client's
    connection that could not be opened at the open-file limit); with CURVE:
    ``auth_rejections`` (a server refused a client's handshake: key not on
    its allow-list, or no CURVE), ``auth_failures`` (a
    server refused this client's handshake) and ``security_refusals`` (casts
    not sent because client and server disagree on CURVE), ``untrusted_routes``
    (distinct routes refused because their key is not pinned in
    ``curve_server_keys_dir``); with the file matchmaker: ``bad_routes``
    (route files ignored: a symbolic link, or an expiry further ahead than
    ``matchmaker_ttl``); ``matchmaker_commands`` (requests the matchmaker
    actor made to its backend: registrations, refreshes, lookups).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: collections.Counter[str] = collections.Counter()

    def incr(self, name: str, amount: int = 1) -> None:
        """Add ``amount`` to counter ``name``. Any thread."""
        with self._lock:
            self._counts[name] += amount

    def snapshot(self) -> Mapping[str, int]:
        """A copy of every counter. Any thread."""
        with self._lock:
            return dict(self._counts)


# Upper bounds (seconds) of the handling-time buckets: 50 µs to 10 s, about
# three per decade, as Prometheus' default buckets but starting lower (a
# call's own work here takes tens of microseconds).
HANDLING_BUCKETS: tuple[float, ...] = (
    0.00005,
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)


@dataclasses.dataclass(frozen=True)
class HistogramSnapshot:
    """Cumulative-free bucket counts (one per bound, then one for larger), their sum and count."""

    bounds: tuple[float, ...]
    counts: tuple[int, ...]
    total: float
    count: int

    def quantile(self, q: float) -> float | None:
        """The ``q`` quantile (0 < q < 1), interpolated within its bucket; None when empty.

        Beyond the last bound it answers that bound: the histogram knows no more.
        """
        if self.count == 0:
            return None
        rank = q * self.count
        seen = 0
        lower = 0.0
        for bound, count in zip(self.bounds, self.counts, strict=False):
            if count and seen + count >= rank:
                return lower + (bound - lower) * (rank - seen) / count
            seen += count
            lower = bound
        return self.bounds[-1]


class ServerStats:
    """One server's counters and its handling-time histogram. Any worker thread.

    ``calls`` (requests run: calls and casts), ``errors`` (their endpoint
    raised), ``refused`` (no such method or version, not served), and
    ``in_flight`` (running now); the histogram holds the time each run took
    in the endpoint, from decode to reply body.
    """

    def __init__(self, bounds: tuple[float, ...] = HANDLING_BUCKETS) -> None:
        self._lock = threading.Lock()
        self._bounds = bounds
        self._buckets = [0] * (len(bounds) + 1)
        self._sum = 0.0
        self.calls = 0
        self.errors = 0
        self.refused = 0
        self.in_flight = 0
        self.started = time.time()

    def begin(self) -> None:
        """A request starts running."""
        with self._lock:
            self.in_flight += 1

    def end(self, seconds: float, *, failed: bool) -> None:
        """A request ran for ``seconds``; ``failed`` if its endpoint raised."""
        index = bisect.bisect_left(self._bounds, seconds)
        with self._lock:
            self.in_flight -= 1
            self.calls += 1
            self.errors += failed
            self._buckets[index] += 1
            self._sum += seconds

    def refuse(self) -> None:
        """A request was refused before it ran (no such method or version, not served)."""
        with self._lock:
            self.refused += 1

    def histogram(self) -> HistogramSnapshot:
        """The handling times so far."""
        with self._lock:
            return HistogramSnapshot(
                self._bounds, tuple(self._buckets), self._sum, sum(self._buckets)
            )

    def snapshot(self) -> dict[str, float | int | None]:
        """Counters, in-flight, uptime and the p50/p99 handling time (seconds)."""
        histogram = self.histogram()
        with self._lock:
            counts = {
                "calls": self.calls,
                "errors": self.errors,
                "refused": self.refused,
                "in_flight": self.in_flight,
            }
        return {
            **counts,
            "uptime": round(time.time() - self.started, 3),
            "p50": _round(histogram.quantile(0.5)),
            "p99": _round(histogram.quantile(0.99)),
        }


def _round(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 7)
