"""Refusal logs, aggregated: one line per peer per interval, with a count.

A client refused again and again (a wrong key, no CURVE, a scanner) must not
flood the log. `RefusalLog` decides, for each refusal, whether to log a line
now and with which count; the caller logs it. Pure: the caller passes the
clock (``time.monotonic()``), so it is tested without sockets or sleeps. One
instance belongs to one thread (the poller's, or the ZAP authenticator's).
"""

from __future__ import annotations

import dataclasses
from typing import Final

__all__ = ["OTHER_PEERS", "REFUSAL_LOG_INTERVAL", "RefusalLog"]

# Seconds between two log lines about the refusals of one peer.
REFUSAL_LOG_INTERVAL: Final = 10.0

# The key refusals are counted under once `max_peers` peers are tracked.
OTHER_PEERS: Final = "<other peers>"


@dataclasses.dataclass(slots=True)
class _Window:
    start: float
    quiet: int = 0


class RefusalLog:
    """Counts refusals by key (a peer address); says when to log and how many.

    The first refusal of a key is logged at once (count 1); the next ones in
    the following ``interval`` seconds are only counted, and the first
    refusal after the interval is logged with the count of everything since
    the last line (itself included). At most ``max_peers`` keys are tracked;
    beyond, keys whose interval is over are forgotten, and if none is, new
    keys are counted together under `OTHER_PEERS`, so memory stays bounded.
    """

    def __init__(self, interval: float, max_peers: int = 1024) -> None:
        if interval < 0 or max_peers < 1:
            msg = f"interval must be >= 0 and max_peers >= 1, got {interval!r} and {max_peers!r}"
            raise ValueError(msg)
        self._interval = interval
        self._max_peers = max_peers
        self._windows: dict[str, _Window] = {}

    def refused(self, key: str, now: float) -> tuple[str, int] | None:
        """Count one refusal of ``key`` at ``now``: (key to log, count) to log a line, else None.

        The key logged is ``key``, or `OTHER_PEERS` when too many are tracked.
        """
        key = self._tracked(key, now)
        window = self._windows.get(key)
        if window is None:
            self._windows[key] = _Window(now)
            return key, 1
        if now - window.start >= self._interval:
            count = window.quiet + 1
            window.start, window.quiet = now, 0
            return key, count
        window.quiet += 1
        return None

    def pending(self) -> dict[str, int]:
        """The refusals counted but not logged yet, by key (for a last line at shutdown)."""
        return {key: w.quiet for key, w in self._windows.items() if w.quiet}

    def _tracked(self, key: str, now: float) -> str:
        windows = self._windows
        if key in windows or len(windows) < self._max_peers:
            return key
        # Forget keys whose interval is over and that have nothing left to report.
        for old in [
            k for k, w in windows.items() if now - w.start >= self._interval and not w.quiet
        ]:
            del windows[old]
        return key if len(windows) < self._max_peers else OTHER_PEERS
