"""The route cache: routes by matchmaker key, and the addresses found unreachable.

Copy-on-write with one writer (the matchmaker actor), so readers in caller
threads take no lock. `zmqactors.transport.routing.Router` reads it.
"""

from __future__ import annotations

import dataclasses
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping

    from zmqactors.matchmaker import Route

__all__ = ["CachedRoutes", "RouteCache"]


@dataclasses.dataclass(frozen=True, slots=True)
class CachedRoutes:
    """The routes of one key as last looked up, and when (``time.monotonic()``)."""

    routes: tuple[Route, ...]
    fetched: float


class RouteCache:
    """Routes by matchmaker key. One writer (the matchmaker actor); readers in any thread."""

    def __init__(self) -> None:
        self._entries: Mapping[str, CachedRoutes] = {}
        self._unreachable: Mapping[str, float] = {}

    def get(self, key: str) -> CachedRoutes | None:
        """The cached routes of ``key``, or None. Any thread."""
        return self._entries.get(key)

    def keys(self) -> frozenset[str]:
        """The keys cached now. Any thread."""
        return frozenset(self._entries)

    def put(self, key: str, routes: tuple[Route, ...]) -> None:
        """Cache ``routes`` (an empty tuple removes the entry). Matchmaker actor only."""
        entries = dict(self._entries)
        if routes:
            entries[key] = CachedRoutes(routes, time.monotonic())
        else:
            entries.pop(key, None)
        self._entries = entries

    def mark_unreachable(self, address: str, until: float) -> None:
        """Leave ``address`` out of every answer until ``until`` (monotonic). Matchmaker actor."""
        now = time.monotonic()
        marks = {a: t for a, t in self._unreachable.items() if t > now}
        marks[address] = until
        self._unreachable = marks

    def reachable(self, routes: tuple[Route, ...]) -> tuple[Route, ...]:
        """``routes`` without the addresses marked unreachable. Any thread."""
        marks = self._unreachable
        if not marks:
            return routes
        now = time.monotonic()
        return tuple(r for r in routes if marks.get(r.address, 0.0) <= now)

    def invalidate(self, key: str) -> None:
        """Forget ``key``. Matchmaker actor only."""
        if key in self._entries:
            entries = dict(self._entries)
            del entries[key]
            self._entries = entries
