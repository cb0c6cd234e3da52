"""`Balancer`: which of a server's workers takes the next request.

Pure bookkeeping, no I/O: the poller (`zmqactors.actors.poller`) drives one
balancer per server from its own thread, telling it when a worker announces
itself (`add`) or answers (`done`) and asking it whom to give a queued request
(`take`). It reads no clock: callers pass ``now`` (``time.monotonic()``), so
tests drive it without sockets or waiting.
"""

from __future__ import annotations

import collections

__all__ = ["Balancer"]


class Balancer:
    """Which worker takes the next request. Pure bookkeeping for the poller's thread.

    Every worker thread that runs competes for the GIL and costs a wake-up
    per hand-off; on two cores a dozen runnable threads cost more than the
    work (measured: one worker served 17k requests/s, sixteen sharing the
    load 6.5k/s). So the balancer brings in only as many workers as the load
    needs:

    - while the worker that got the last request is busy and *fast* (its
      oldest request started less than ``fast`` seconds ago), the next request
      waits in the poller for it rather than wake another thread. Under load
      (``waiting`` > 1 requests queued) it gets more in advance, so it finds
      its next request queued when it finishes instead of sleeping for a
      hand-off: as many as it serves in ``fast`` seconds at its recent pace
      (`depth`: 2 to ``max_depth``; none in advance while requests take
      longer than ``fast`` on average, as under a client's slow calls: one
      queued in a worker would wait out a slow call while others idle).
      `wake_at` says when to look again if it stops being fast;
    - otherwise the most recently idle worker (the warmest thread) takes it;
    - with none idle, the request waits in the poller.

    So a request waits at most ``fast`` seconds while a worker is idle, and
    at most ``depth - 1`` requests (only ones that arrived under load, while
    the requests before them took a few microseconds each) can wait behind a
    call that turns out slow in its worker.
    """

    def __init__(self, fast: float, max_depth: int = 32) -> None:
        self._fast = fast
        self._max_depth = max_depth
        self._started: dict[bytes, collections.deque[float]] = {}
        self._idle: list[bytes] = []
        self._last: bytes | None = None
        # Recent time per request (seconds, a moving average); unknown: "fast".
        self._pace = fast
        self._depth = self._depth_at(fast)
        self.in_progress = 0
        self.wake_at: float | None = None

    @property
    def depth(self) -> int:
        """How many requests a fast worker may hold, at the recent pace."""
        return self._depth

    def _depth_at(self, pace: float) -> int:
        # Worked out when the pace changes, not at every take().
        if pace > self._fast:
            # Requests take longer than the fast window: none waits in a
            # worker behind one that may be slow while another worker idles.
            return 1
        return max(2, min(self._max_depth, int(self._fast / max(pace, 1e-6))))

    def add(self, worker: bytes) -> None:
        """A worker announced itself, idle."""
        self._started[worker] = collections.deque()
        self._idle.append(worker)

    def take(self, now: float, waiting: int) -> bytes | None:
        """The worker for the next of ``waiting`` queued requests, or None to keep it queued.

        ``now`` is ``time.monotonic()``.
        """
        self.wake_at = None
        last = self._last
        if last is not None:
            started = self._started[last]
            if started and now - started[0] < self._fast:
                if waiting > 1 and len(started) < self._depth:
                    return self._give(last, now)
                self.wake_at = started[0] + self._fast
                return None
        if not self._idle:
            return None
        return self._give(self._idle.pop(), now)

    def _give(self, worker: bytes, now: float) -> bytes:
        started = self._started[worker]
        started.append(now)
        self._last = worker
        self.in_progress += 1
        return worker

    def done(self, worker: bytes, now: float) -> None:
        """``worker`` answered its oldest request (at ``now``, ``time.monotonic()``)."""
        started = self._started[worker]
        began = started.popleft()
        self.in_progress -= 1
        if started:
            # The next one was queued in the worker: it starts now.
            started[0] = max(started[0], now)
        self._pace += (now - began - self._pace) / 8
        self._depth = self._depth_at(self._pace)
        if not started:
            self._idle.append(worker)
