"""Which server a message goes to: the choice among the servers of the route cache.

The matchmaker actor is the cache's only writer (`zmqactors.core.routes`,
copy-on-write, so readers take no lock); caller threads read it without a
hop. Only a miss — nothing
cached for the key, or no cached route of the requested server — costs a
round trip to the matchmaker actor. A stale entry is still used while the
actor refreshes it in the background, so routes keep working while the
backend is down. Empty results are never cached: a server that registers is
found by the next call.

With pinned server keys (``curve_server_keys_dir``) only the routes the pins
trust are ever answered: the others are logged once each and counted
(``untrusted_routes``), so no call, cast, fanout or notification is sent to
them, and a target whose registered servers are all untrusted fails at once
with `SecurityError` (with none registered, `NoRespondersError` as before).
"""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
from typing import TYPE_CHECKING, Any

import pykka
import structlog

from zmqactors.actors.messages import Lookup, Refresh
from zmqactors.errors import (
    MessagingError,
    NoRespondersError,
    SecurityError,
    TransportClosedError,
)
from zmqactors.topics import Target, matchmaker_key

if TYPE_CHECKING:
    from zmqactors.core.pins import ServerKeyPins
    from zmqactors.core.routes import RouteCache
    from zmqactors.core.stats import Stats
    from zmqactors.matchmaker import Route

__all__ = ["Router"]

# How long a caller waits for the matchmaker actor to answer a lookup.
_LOOKUP_TIMEOUT = 10.0
# Past this many gone marks, expired ones are swept when one is added.
_GONE_SWEEP = 1024

_log = structlog.get_logger("zmqactors.routing")


class Router:
    """Answers "where do I send this?" for clients of one transport. Any thread."""

    def __init__(
        self,
        cache: RouteCache,
        matchmaker: pykka.ActorRef[Any],
        cache_ttl: float,
        pins: ServerKeyPins | None = None,
        stats: Stats | None = None,
    ) -> None:
        self._cache = cache
        self._matchmaker = matchmaker
        self._cache_ttl = cache_ttl
        self._pins = pins
        self._stats = stats
        # The untrusted routes already logged and counted, and a lock so each is once.
        self._untrusted: set[tuple[str, str, str | None]] = set()
        self._untrusted_lock = threading.Lock()
        self._refreshing: dict[str, float] = {}
        self._turn = itertools.count()
        # Routes that told us they are gone (stopping, not served, refused),
        # skipped until the monotonic time given: (key, server, address) -> until.
        # Written from the reply-waiter's thread, read from callers': single
        # dict operations only.
        self._gone: dict[tuple[str, str, str], float] = {}

    def lookup(self, key: str, *, fresh: bool = False) -> tuple[tuple[Route, ...], bool]:
        """The reachable, trusted routes of ``key`` (maybe none), and whether they were cached.

        ``fresh`` skips the cache: the answer includes a server whose ``start()``
        returned a moment ago (fanout needs that; it costs a matchmaker round trip).
        """
        routes, cached = self._reachable(key, fresh=fresh)
        return self._trusted(routes), cached

    def _reachable(self, key: str, *, fresh: bool) -> tuple[tuple[Route, ...], bool]:
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

    def _trusted(self, routes: tuple[Route, ...]) -> tuple[Route, ...]:
        pins = self._pins
        if pins is None:
            return routes
        trusted = tuple(r for r in routes if pins.trusts(r))
        if len(trusted) < len(routes):
            for route in routes:
                if not pins.trusts(route):
                    self._refuse(route, pins)
        return trusted

    def _refuse(self, route: Route, pins: ServerKeyPins) -> None:
        seen = (route.server, route.address, route.server_key)
        with self._untrusted_lock:
            if seen in self._untrusted:
                return
            self._untrusted.add(seen)
        if self._stats is not None:
            self._stats.incr("untrusted_routes")
        # repr(): the names come from the matchmaker, so from anyone who can write to it.
        _log.warning(
            "route refused: its server key is not pinned in curve_server_keys_dir",
            server=repr(route.server),
            address=repr(route.address),
            server_key=repr(route.server_key),
            pinned=pins.by_name.get(route.server),
            directory=pins.directory,
        )

    def turn(self) -> int:
        """A number that grows by one per message, to take servers in turn."""
        return next(self._turn)

    def routes(self, target: Target) -> tuple[Route, ...]:
        """Every live, trusted route of ``target`` (only its server's, if it names one).

        A fanout target is always looked up afresh. Raises at once
        `NoRespondersError` when nothing is registered, and `SecurityError`
        when servers are registered but the pinned keys trust none of them.
        """
        key = matchmaker_key(target)
        routes, cached = self._reachable(key, fresh=target.fanout)
        routes = self._of_server(routes, target.server)
        if self._gone:
            routes = self._not_gone(key, routes)
        trusted = self._trusted(routes)
        if not trusted and cached:
            # Nothing cached is usable (the server registered after the entry
            # was cached, or every cached address was found dead, as when a
            # server is restarted on a new port): ask the matchmaker now.
            routes = self._of_server(self._cache.reachable(self._lookup(key)), target.server)
            trusted = self._trusted(routes)
        if trusted:
            return trusted
        if routes and self._pins is not None:
            msg = (
                f"no server registered for {target} is trusted: the keys of its "
                f"{len(routes)} route(s) are not pinned in curve_server_keys_dir "
                f"{self._pins.directory!r}"
            )
            raise SecurityError(msg)
        msg = f"no server is registered (and reachable) for {target}"
        raise NoRespondersError(msg)

    def mark_gone(self, key: str, route: Route) -> None:
        """``route`` of ``key`` answered that it is gone: skip it a while, look ``key`` up again.

        Any thread (the reply-waiter's, for a refused call). Skipped for
        ``lookup_cache_ttl`` seconds, at least one: by then the matchmaker has
        told this transport whether the server left or came back.
        """
        now = time.monotonic()
        mark = (key, route.server, route.address)
        known = self._gone.get(mark, 0.0) > now
        self._gone[mark] = now + max(self._cache_ttl, 1.0)
        if len(self._gone) > _GONE_SWEEP:
            for old, until in list(self._gone.items()):
                if until <= now:
                    self._gone.pop(old, None)
        if not known:
            # Once per route gone, however many calls were refused by it.
            with contextlib.suppress(TransportClosedError):
                self._tell(Refresh(key))

    def _not_gone(self, key: str, routes: tuple[Route, ...]) -> tuple[Route, ...]:
        now = time.monotonic()
        gone = self._gone
        return tuple(r for r in routes if gone.get((key, r.server, r.address), 0.0) <= now)

    def pick_other(self, target: Target, failed: Route) -> Route | None:
        """Another cached, usable route of topic ``target`` than ``failed``; never waits.

        For a retry from the reply-waiter's thread: no matchmaker round trip.
        None when the cache has no other.
        """
        key = matchmaker_key(target)
        entry = self._cache.get(key)
        if entry is None:
            return None
        routes = self._not_gone(key, self._cache.reachable(entry.routes))
        others = tuple(
            r
            for r in self._trusted(routes)
            if (r.server, r.address) != (failed.server, failed.address)
        )
        if not others:
            return None
        return others[next(self._turn) % len(others)]

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
