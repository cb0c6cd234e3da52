"""The matchmaker actor: owns the discovery backend, registrations and the route cache.

It alone talks to the backend (created in its thread): it registers this
process's servers and refreshes them every TTL/3 (all of them in one request
when the backend can: a Redis pipeline, one etcd lease keep-alive), answers
lookups and writes their results into the `RouteCache` that callers read
without a hop. A backend that watches the store (`Watching`) tells it, from
its own thread and through this actor's inbox (`RoutesChanged`), which keys
changed; the actor looks up again those it has cached, so a client sees a
server start or stop one round trip after the store does, not after
``lookup_cache_ttl``. Every request to the backend is counted
(``matchmaker_commands``). When the
backend fails, cached routes stay in use, the failure is logged once (not per
call or per refresh), and registrations are redone as soon as it answers again.
For one TTL after that, lookups keep the routes cached before the outage
beside the backend's answer, which may lack servers that have not yet
registered again (a restarted Redis comes back empty).
"""

from __future__ import annotations

import functools
import time
from typing import TYPE_CHECKING, assert_never

import pykka

from zmqactors.actors.base import SocketActor
from zmqactors.actors.messages import (
    Lookup,
    MatchmakerMessage,
    Refresh,
    Register,
    RoutesChanged,
    Unreachable,
    Unregister,
)
from zmqactors.errors import MessagingError
from zmqactors.matchmaker.base import Refreshing, Watching

if TYPE_CHECKING:
    from collections.abc import Callable

    from zmqactors.core.routes import RouteCache
    from zmqactors.core.stats import Stats
    from zmqactors.matchmaker import Matchmaker, Route

__all__ = ["MatchmakerActor"]

# While the backend fails, background refreshes probe it at most this often.
_PROBE_INTERVAL = 1.0


class MatchmakerActor(SocketActor):
    """Registration, refresh and lookups against one backend."""

    actor_name = "matchmaker"

    def __init__(
        self,
        backend_factory: Callable[[], Matchmaker],
        cache: RouteCache,
        ttl: float,
        stats: Stats,
        unreachable_for: float,
    ) -> None:
        super().__init__()
        self._factory = backend_factory
        self._backend: Matchmaker | None = None
        self._cache = cache
        self._ttl = ttl
        self._unreachable_for = unreachable_for
        self._stats = stats
        # (key, server, address, server key)
        self._registered: set[tuple[str, str, str, str | None]] = set()
        self._next_refresh: float | None = None
        self._failing = False
        self._next_probe = 0.0
        # Until then the backend may still miss live servers' registrations.
        self._recovering_until = 0.0
        self._watching = False
        # Keys the backend said changed (None: every cached key), looked up
        # at _changes_due (monotonic), when the inbox is drained.
        self._changed_keys: set[str] | None = set()
        self._changes_due: float | None = None

    def on_start(self) -> None:
        """Create the backend in this thread."""
        self._backend = self._factory()

    def _watch(self) -> None:
        """Start the backend's watch, if it has one, when this process first looks up.

        Not before: a process that only serves never reads its cache, and a
        thousand server processes each holding a watch open would load the
        store for nothing.
        """
        if self._watching:
            return
        self._watching = True
        backend = self.backend
        if not isinstance(backend, Watching):
            return
        ref = self.actor_ref

        def notify(keys: tuple[str, ...] | None) -> None:
            # The backend's watch thread: only a hand-off to this actor.
            try:
                ref.tell(RoutesChanged(keys))
            except pykka.ActorDeadError:
                return

        backend.watch(notify)

    @property
    def backend(self) -> Matchmaker:
        """The backend (created in `on_start`)."""
        assert self._backend is not None  # noqa: S101 - set in on_start
        return self._backend

    def on_receive(self, message: MatchmakerMessage) -> tuple[Route, ...] | None:
        """Handle one inbox message (actor thread)."""
        match message:
            case Register(key, server, address, server_key):
                self._stats.incr("matchmaker_commands")
                self.backend.register(key, server, address, self._ttl, server_key)
                self._registered.add((key, server, address, server_key))
                self._cache.invalidate(key)
                if self._next_refresh is None:
                    self._next_refresh = time.monotonic() + self._ttl / 3
                return None
            case Unregister(key, server, address, server_key):
                self._registered.discard((key, server, address, server_key))
                self._cache.invalidate(key)
                self._call_backend(
                    functools.partial(self.backend.unregister, key, server, address, server_key)
                )
                return None
            case Lookup(key):
                return self._lookup(key, raise_errors=True)
            case Refresh(key):
                # While the backend fails, callers keep their cached routes;
                # probing it on every refresh would stall this actor.
                if not self._failing or time.monotonic() >= self._next_probe:
                    self._lookup(key, raise_errors=False)
                return None
            case RoutesChanged(keys):
                self._note_changed(keys)
                return None
            case Unreachable(address):
                # For as long as a lookup is cached: then one call tries the
                # address again (and fails fast if it is still down).
                self._cache.mark_unreachable(address, time.monotonic() + self._unreachable_for)
                return None
            case _:
                assert_never(message)

    def _note_changed(self, keys: tuple[str, ...] | None) -> None:
        """Look ``keys`` up again once the inbox is drained (None: every cached key).

        Through the timer, which runs when no message waits (or every few
        dozen): a burst of changes (a thousand servers starting) costs one
        lookup per key, not one per change.
        """
        if self._changes_due is None:
            self._changes_due = time.monotonic()
        if self._changed_keys is not None:
            self._changed_keys = None if keys is None else self._changed_keys | set(keys)

    def _flush_changes(self) -> None:
        """Look up again the cached keys that changed (all of them after a None)."""
        keys, self._changed_keys = self._changed_keys, set()
        cached = self._cache.keys()
        for key in sorted(cached if keys is None else keys & cached):
            self._lookup(key, raise_errors=False)

    def _lookup(self, key: str, *, raise_errors: bool) -> tuple[Route, ...]:
        self._watch()
        self._stats.incr("matchmaker_commands")
        try:
            routes = self.backend.lookup(key)
        except Exception as exc:  # noqa: BLE001 - any backend failure falls back to the cache
            self._note_failure(exc)
            cached = self._cache.get(key)
            if cached is not None:
                return cached.routes
            if raise_errors:
                msg = f"matchmaker lookup of {key!r} failed: {exc}"
                raise MessagingError(msg) from None
            return ()
        self._note_success()
        if time.monotonic() < self._recovering_until:
            routes = self._with_cached(key, routes)
        self._cache.put(key, routes)
        return routes

    def _with_cached(self, key: str, routes: tuple[Route, ...]) -> tuple[Route, ...]:
        """``routes`` plus the cached routes of ``key`` that the backend does not list."""
        cached = self._cache.get(key)
        if cached is None:
            return routes
        listed = {(r.server, r.address) for r in routes}
        return routes + tuple(r for r in cached.routes if (r.server, r.address) not in listed)

    def _call_backend(self, action: Callable[[], None]) -> bool:
        self._stats.incr("matchmaker_commands")
        try:
            action()
        except Exception as exc:  # noqa: BLE001 - any backend failure is logged once and retried
            self._note_failure(exc)
            return False
        self._note_success()
        return True

    def _note_failure(self, exc: Exception) -> None:
        self._stats.incr("matchmaker_errors")
        self._next_probe = time.monotonic() + _PROBE_INTERVAL
        if not self._failing:
            self._failing = True
            self.log.warning("matchmaker backend failing; using cached routes", error=str(exc))

    def _note_success(self) -> None:
        if self._failing:
            self._failing = False
            self.log.warning("matchmaker backend answers again")
            # A backend that comes back may have lost every registration (a
            # Redis restarted without persistence): until live servers have
            # registered again (each retries within a second, or TTL/3), its
            # answers are joined with the routes cached before the outage, so
            # calls to known servers do not fail meanwhile.
            self._recovering_until = time.monotonic() + self._ttl
            if self._registered:
                # Redo every registration now, not at the next period: the
                # backend may have lost them (a restarted Redis).
                self._next_refresh = time.monotonic()

    def next_deadline(self) -> float | None:
        """When changed keys are due for a lookup, or the registrations for a refresh."""
        refresh = self._next_refresh if self._registered else None
        if self._changes_due is None:
            return refresh
        return self._changes_due if refresh is None else min(refresh, self._changes_due)

    def on_deadline(self, now: float) -> None:
        """Look up the changed keys, and refresh the registrations if they are due."""
        if self._changes_due is not None and now >= self._changes_due:
            self._changes_due = None
            self._flush_changes()
        if self._registered and self._next_refresh is not None and now >= self._next_refresh:
            self._refresh(now)

    def _refresh(self, now: float) -> None:
        """Refresh every registration (all of them again after a failure)."""
        backend = self.backend
        if isinstance(backend, Refreshing):
            self._call_backend(
                functools.partial(backend.refresh, tuple(self._registered), self._ttl)
            )
        else:
            for key, server, address, server_key in tuple(self._registered):
                if not self._call_backend(
                    functools.partial(backend.register, key, server, address, self._ttl, server_key)
                ):
                    break
        # After a failure, retry sooner than a full period so registrations
        # come back as soon as the backend does.
        period = self._ttl / 3
        self._next_refresh = now + (min(1.0, period) if self._failing else period)

    def close_sockets(self) -> None:
        """Unregister what is still registered and close the backend."""
        if self._backend is None:
            return
        backend = self._backend
        if isinstance(backend, Refreshing) and self._registered:
            # One request for all of them, as for the refreshes.
            self._call_backend(functools.partial(backend.unregister_many, tuple(self._registered)))
        else:
            for key, server, address, server_key in tuple(self._registered):
                self._call_backend(
                    functools.partial(backend.unregister, key, server, address, server_key)
                )
        self._registered.clear()
        backend.close()
