"""`Batcher`: items gathered into batches of a size, flushed by size or by age.

One batcher serves notification listeners (`NotificationDispatcher`) and the
oslo.messaging driver's listener. It reads no clock: callers pass ``now``
(``time.monotonic()``), so tests drive it without waiting.
"""

from __future__ import annotations

import threading
from typing import Generic, TypeVar

__all__ = ["Batcher"]

_T = TypeVar("_T")


class Batcher(Generic[_T]):
    """Up to ``size`` items; a partial batch is due ``timeout`` seconds after its first item.

    Thread-safe: `add` runs in a worker's thread, `take` may run in
    another (a stop flushing what is left).
    """

    def __init__(self, size: int, timeout: float | None) -> None:
        self.size = size
        self.timeout = timeout
        self._lock = threading.Lock()
        self._items: list[_T] = []
        self._due: float | None = None

    def add(self, item: _T, now: float) -> list[_T] | None:
        """Add ``item``; return the batch it completes (and start a new one), else None."""
        with self._lock:
            self._items.append(item)
            if len(self._items) >= self.size:
                return self._take()
            if self._due is None and self.timeout is not None:
                self._due = now + self.timeout
        return None

    @property
    def due(self) -> float | None:
        """When the partial batch is due (``time.monotonic()``), or None."""
        return self._due

    def take_due(self, now: float) -> list[_T]:
        """The partial batch if it is due at ``now`` (it then starts afresh), else nothing."""
        with self._lock:
            if self._due is not None and now >= self._due:
                return self._take()
        return []

    def take(self) -> list[_T]:
        """Everything gathered so far (maybe nothing); a new batch starts."""
        with self._lock:
            return self._take()

    def _take(self) -> list[_T]:
        items, self._items, self._due = self._items, [], None
        return items
