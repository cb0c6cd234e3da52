"""The server's memory of acknowledged casts, so a retried one runs once.

Pure logic, no sockets: the `Dispatcher` of one server (shared by its
worker threads) asks `DedupCache.begin` before it runs an acknowledged
cast and calls `DedupCache.finish` once the endpoint returned. A message id
is remembered while its endpoint runs and for ``ttl`` seconds after, at most
``max_entries`` of them (the oldest finished ones are forgotten first), so
the memory is bounded whatever clients send.
"""

from __future__ import annotations

import collections
import enum
import threading
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["DEDUP_MAX_ENTRIES", "DEDUP_TTL", "DedupCache", "Seen"]

# A client retries an acknowledged cast until its timeout (default 30 s, at
# most minutes in practice); remembering ids for five minutes covers that.
DEDUP_TTL = 300.0
# About 150 bytes each: at most ~8 MB per server.
DEDUP_MAX_ENTRIES = 50_000


class Seen(enum.Enum):
    """What `DedupCache.begin` found for a message id."""

    NEW = enum.auto()  # run it
    RUNNING = enum.auto()  # a copy is running now: drop this one, its ack will come
    DONE = enum.auto()  # it already ran: acknowledge again, do not run


_RUNNING = float("inf")


class DedupCache:
    """Recently seen message ids with a TTL and a size bound. Any thread (one lock).

    ``clock`` returns seconds (``time.monotonic`` by default; tests inject one).
    """

    def __init__(
        self,
        ttl: float = DEDUP_TTL,
        max_entries: int = DEDUP_MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if ttl <= 0 or max_entries < 1:
            msg = f"invalid dedup cache bounds: ttl={ttl!r}, max_entries={max_entries!r}"
            raise ValueError(msg)
        self._ttl = ttl
        self._max = max_entries
        self._clock = clock
        self._lock = threading.Lock()
        # msg_id -> expiry (_RUNNING while the endpoint runs), oldest first:
        # finished entries move to the end, so expiries grow along the dict.
        self._entries: collections.OrderedDict[bytes, float] = collections.OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def begin(self, msg_id: bytes) -> Seen:
        """Record that ``msg_id`` starts running, unless it is running or ran within the TTL."""
        with self._lock:
            now = self._clock()
            self._expire(now)
            expiry = self._entries.get(msg_id)
            if expiry is not None:
                if expiry == _RUNNING:
                    return Seen.RUNNING
                if expiry > now:
                    return Seen.DONE
            self._entries[msg_id] = _RUNNING
            self._entries.move_to_end(msg_id)
            self._bound()
            return Seen.NEW

    def finish(self, msg_id: bytes) -> None:
        """``msg_id`` has run: remember it for the TTL from now."""
        with self._lock:
            self._entries[msg_id] = self._clock() + self._ttl
            self._entries.move_to_end(msg_id)
            self._bound()

    def forget(self, msg_id: bytes) -> None:
        """``msg_id`` did not run after all (refused): a retry may run it."""
        with self._lock:
            self._entries.pop(msg_id, None)

    def _expire(self, now: float) -> None:
        entries = self._entries
        looked = 0
        total = len(entries)
        while entries and looked < total:
            looked += 1
            msg_id, expiry = next(iter(entries.items()))
            if expiry == _RUNNING:
                # A running entry stays (few: one per worker thread at most);
                # it moves to the end again when it finishes.
                entries.move_to_end(msg_id)
                continue
            if expiry > now:
                return
            del entries[msg_id]

    def _bound(self) -> None:
        entries = self._entries
        skipped = 0
        while len(entries) > self._max and skipped < len(entries):
            msg_id, expiry = next(iter(entries.items()))
            if expiry == _RUNNING:
                entries.move_to_end(msg_id)
                skipped += 1
                continue
            del entries[msg_id]
