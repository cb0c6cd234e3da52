"""A matchmaker that lives in this process's memory, for tests and ``zmq+memory://``.

Every `MemoryMatchmaker` built with the same name shares one store, so a server
transport and a client transport in one process find each other without any
shared object being passed between them. Stores live in a module-level dict
guarded by one lock; a store is dropped once its last route is gone, so tests
that use a fresh name each time do not make the dict grow.
"""

from __future__ import annotations

import math
import threading
import time

from zmqactors.matchmaker.base import Route

__all__ = ["MemoryMatchmaker"]

# name -> key -> (server, address) -> (expires (time.time()), server key). One
# lock for all stores: operations are a few dict updates, far cheaper than any
# contention.
_Store = dict[str, dict[tuple[str, str], tuple[float, str | None]]]
_STORES: dict[str, _Store] = {}
_LOCK = threading.Lock()


class MemoryMatchmaker:
    """Routes kept in memory, shared by every instance with the same ``name``.

    Thread-safe: any thread may call any method. Routes do not survive the process.
    """

    def __init__(self, name: str = "") -> None:
        """Attach to the store called ``name`` (created on first use); any thread."""
        self._name = name

    @property
    def name(self) -> str:
        """The name of the shared store this instance uses."""
        return self._name

    def __repr__(self) -> str:
        """Show the store's name, for logs."""
        return f"{type(self).__name__}(name={self._name!r})"

    def register(
        self, key: str, server: str, address: str, ttl: float, server_key: str | None = None
    ) -> None:
        """Add or refresh the route (with ``server_key``), valid for ``ttl`` seconds; any thread.

        Raises ``ValueError`` if ``ttl`` is not a positive finite number.
        """
        _check_ttl(ttl)
        expires = time.time() + ttl
        with _LOCK:
            store = _STORES.setdefault(self._name, {})
            store.setdefault(key, {})[(server, address)] = (expires, server_key)

    def unregister(
        self,
        key: str,
        server: str,
        address: str,
        server_key: str | None = None,  # noqa: ARG002 - the route is (server, address) here
    ) -> None:
        """Remove the route; an absent route is not an error. Any thread; never raises."""
        with _LOCK:
            store = _STORES.get(self._name)
            if store is None:
                return
            routes = store.get(key)
            if routes is None:
                return
            routes.pop((server, address), None)
            _drop_if_empty(self._name, store, key)

    def lookup(self, key: str) -> tuple[Route, ...]:
        """Return the unexpired routes of ``key`` sorted by (server, address); any thread.

        Expired routes of ``key`` are removed on the way. Never raises.
        """
        now = time.time()
        with _LOCK:
            store = _STORES.get(self._name)
            if store is None:
                return ()
            routes = store.get(key)
            if routes is None:
                return ()
            expired = [route for route, (expires, _) in routes.items() if not expires > now]
            for route in expired:
                del routes[route]
            live = sorted(routes.items())
            _drop_if_empty(self._name, store, key)
        return tuple(
            Route(server, address, expires, server_key)
            for (server, address), (expires, server_key) in live
        )

    def entries(self) -> tuple[tuple[str, Route], ...]:
        """Every unexpired (key, route) of this store, sorted; any thread."""
        now = time.time()
        with _LOCK:
            store = _STORES.get(self._name, {})
            live = sorted(
                (key, server, address, expires, server_key)
                for key, routes in store.items()
                for (server, address), (expires, server_key) in routes.items()
                if expires > now
            )
        return tuple(
            (key, Route(server, address, expires, server_key))
            for key, server, address, expires, server_key in live
        )

    def close(self) -> None:
        """Do nothing: routes stay in the shared store until unregistered or expired.

        Other instances with the same name may still be using them. Any thread;
        idempotent; never raises.
        """


def _drop_if_empty(name: str, store: _Store, key: str) -> None:
    # Caller holds _LOCK. Dropping empty entries keeps memory bounded when
    # many short-lived names or keys are used (one fresh name per test).
    if key in store and not store[key]:
        del store[key]
    if not store:
        _STORES.pop(name, None)


def _check_ttl(ttl: float) -> None:
    valid = isinstance(ttl, (int, float)) and not isinstance(ttl, bool)
    if not (valid and math.isfinite(ttl) and ttl > 0):
        msg = f"matchmaker ttl must be a positive finite number of seconds, got {ttl!r}"
        raise ValueError(msg)
