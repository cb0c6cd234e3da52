"""Which server a message goes to: the choice among the servers of the route cache.

The matchmaker actor is the cache's only writer (`zmqactors.core.routes`,
copy-on-write, so readers take no lock); caller threads read it without a
hop. Only a miss — nothing
cached for the key, or no cached route of the requested server — costs a
round trip to the matchmaker actor. A stale entry is still used while the
actor refreshes it in the background, so routes keep working while the
backend is down. Empty results are never cached: a server that registers is
found by the next call.
"""

from __future__ import annotations

import itertools
import time
from typing import TYPE_CHECKING, Any

import pykka

from zmqactors.actors.messages import Lookup, Refresh
from zmqactors.errors import MessagingError, NoRespondersError, TransportClosedError
from zmqactors.topics import Target, matchmaker_key

if TYPE_CHECKING:
    from zmqactors.core.routes import RouteCache
    from zmqactors.matchmaker import Route

__all__ = ["Router"]

# How long a caller waits for the matchmaker actor to answer a lookup.
_LOOKUP_TIMEOUT = 10.0


class Router:
    """Answers "where do I send this?" for clients of one transport. Any thread."""

    def __init__(
        self, cache: RouteCache, matchmaker: pykka.ActorRef[Any], cache_ttl: float
    ) -> None:
        self._cache = cache
        self._matchmaker = matchmaker
        self._cache_ttl = cache_ttl
        self._refreshing: dict[str, float] = {}
        self._turn = itertools.count()

    def lookup(self, key: str, *, fresh: bool = False) -> tuple[tuple[Route, ...], bool]:
        """The reachable routes of ``key`` (maybe none), and whether they came from the cache.

        ``fresh`` skips the cache: the answer includes a server whose ``start()``
        returned a moment ago (fanout needs that; it costs a matchmaker round trip).
        """
        entry = None if fresh else self._cache.get(key)
        if entry is None:
            routes = self._lookup(key)
        else:
            routes = entry.routes
            now = time.monotonic()
            if now - entry.fetched > self._cache_ttl and self._refreshing.get(key, 0.0) < now - 1.0:
                self._refreshing[key] = now
                self._tell(Refresh(key))
        return self._cache.reachable(routes), entry is not None

    def turn(self) -> int:
        """A number that grows by one per message, to take servers in turn."""
        return next(self._turn)

    def routes(self, target: Target) -> tuple[Route, ...]:
        """Every live route of ``target`` (only its server's, if it names one).

        A fanout target is always looked up afresh. Raises `NoRespondersError`
        at once when nothing is registered.
        """
        key = matchmaker_key(target)
        routes, cached = self.lookup(key, fresh=target.fanout)
        routes = self._of_server(routes, target.server)
        if not routes and cached:
            # Nothing cached is usable (the server registered after the entry
            # was cached, or every cached address was found dead, as when a
            # server is restarted on a new port): ask the matchmaker now.
            routes = self._of_server(self._cache.reachable(self._lookup(key)), target.server)
        if not routes:
            msg = f"no server is registered (and reachable) for {target}"
            raise NoRespondersError(msg)
        return routes

    @staticmethod
    def _of_server(routes: tuple[Route, ...], server: str | None) -> tuple[Route, ...]:
        return routes if server is None else tuple(r for r in routes if r.server == server)

    def pick(self, target: Target) -> Route:
        """One route of ``target``, taking the servers in turn."""
        routes = self.routes(target)
        return routes[next(self._turn) % len(routes)]

    def _lookup(self, key: str) -> tuple[Route, ...]:
        try:
            routes: tuple[Route, ...] = self._matchmaker.ask(
                Lookup(key), block=True, timeout=_LOOKUP_TIMEOUT
            )
        except pykka.ActorDeadError:
            msg = "the transport is closed"
            raise TransportClosedError(msg) from None
        except pykka.Timeout:
            msg = f"the matchmaker did not answer a lookup of {key!r} in {_LOOKUP_TIMEOUT}s"
            raise MessagingError(msg) from None
        return routes

    def _tell(self, message: Refresh) -> None:
        try:
            self._matchmaker.tell(message)
        except pykka.ActorDeadError:
            msg = "the transport is closed"
            raise TransportClosedError(msg) from None
