"""The matchmaker interface: where the servers of a topic can be reached.

Backends: memory (one process), file (one host), redis, sentinel and etcd (several hosts).

A backend stores *routes*: (key, server, address) with an expiry, and the
server's CURVE public key when it serves CurveZMQ (so clients need no
configuration of servers' keys). Entries written without a key, by older
versions or by servers without CURVE, read back with ``server_key=None``. Keys come
from `zmqactors.topics.keys.matchmaker_key`; the server name is part of the
route, so one lookup answers both "any server of the topic" and "that server".

Backends are plain blocking objects; only those that can be told about
changes (`Watching`) run a thread of their own, which does nothing but read
the store's notifications and pass them on. Only the matchmaker actor calls
``register``/``unregister`` and refreshes entries; lookups may come from any
thread, so every backend must be thread-safe.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

__all__ = ["Matchmaker", "Refreshing", "Route", "Watching"]


@dataclasses.dataclass(frozen=True, slots=True)
class Route:
    """One registered server of a key: its name, its address and when it expires.

    ``expires`` is wall-clock time (``time.time()``), comparable across processes.
    ``server_key`` is the server's CURVE public key (40 Z85 characters), or
    None for a server without CURVE.
    """

    server: str
    address: str
    expires: float
    server_key: str | None = None


class Matchmaker(Protocol):
    """What every discovery backend provides."""

    def register(
        self, key: str, server: str, address: str, ttl: float, server_key: str | None = None
    ) -> None:
        """Add or refresh the route (key, server, address), valid for ``ttl`` seconds.

        ``server_key`` (the server's CURVE public key) is stored with it.

        Raises ``OSError`` (or a backend's connection error) when the store is unreachable.
        """

    def unregister(
        self, key: str, server: str, address: str, server_key: str | None = None
    ) -> None:
        """Remove the route at once; removing an absent route is not an error.

        ``server_key`` is the one it was registered with.
        """

    def lookup(self, key: str) -> tuple[Route, ...]:
        """The unexpired routes of ``key``, sorted by (server, address); empty if none."""

    def entries(self) -> tuple[tuple[str, Route], ...]:
        """Every unexpired (key, route), sorted by (key, server, address): for operators."""

    def close(self) -> None:
        """Release the backend's resources; calling it twice is fine."""


@runtime_checkable
class Watching(Protocol):
    """A backend that pushes changes instead of waiting to be asked."""

    def watch(self, notify: Callable[[tuple[str, ...] | None], None]) -> None:
        """Call ``notify`` (from the backend's own thread) each time routes change.

        ``notify`` gets the keys whose routes changed, or None when changes
        may have been missed (the store was unreachable for a while): then
        every key may have changed. It must return quickly and never raise.
        Called once; ``close`` ends the thread.
        """


@runtime_checkable
class Refreshing(Protocol):
    """A backend that refreshes (and removes) many registrations in one request."""

    def refresh(self, routes: Iterable[tuple[str, str, str, str | None]], ttl: float) -> None:
        """Register again every (key, server, address, server key) of ``routes`` for ``ttl``.

        What ``register`` would do for each, in one round trip (or a few):
        a Redis pipeline, an etcd lease keep-alive. Raises as ``register``.
        """

    def unregister_many(self, routes: Iterable[tuple[str, str, str, str | None]]) -> None:
        """``unregister`` every (key, server, address, server key) of ``routes``, in one go.

        Raises as ``unregister``.
        """
