"""`Transport`: a connection to one matchmaker, and the actors of this process behind it."""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import itertools
import os
import threading
import weakref
from typing import TYPE_CHECKING, Any, Self, cast

import pykka
import structlog

from zmqactors.actors.base import PollingInbox, SocketActor
from zmqactors.actors.matchmaker import MatchmakerActor
from zmqactors.actors.poller import Poller
from zmqactors.actors.reply_waiter import ReplyWaiter
from zmqactors.core.routes import RouteCache
from zmqactors.core.stats import Stats
from zmqactors.core.window import SendWindow
from zmqactors.errors import TransportClosedError
from zmqactors.matchmaker import Matchmaker, create_matchmaker
from zmqactors.net.context import on_fork_child, terminate
from zmqactors.options import DEFAULT_URL, Settings, parse_url
from zmqactors.transport.routing import Router

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import TracebackType

    from oslo_config import cfg

    from zmqactors.actors.messages import ReplyWaiterMessage
    from zmqactors.transport.service import Service

__all__ = ["Transport"]

_log = structlog.get_logger("zmqactors.transport")

# How long close() waits for each actor to finish its clean-up.
_STOP_TIMEOUT = 5.0
_live: weakref.WeakSet[Transport] = weakref.WeakSet()
_server_ids = itertools.count()


@dataclasses.dataclass(eq=False)
class _Actors:
    """The actors serving one transport in one process."""

    pid: int
    reply_waiter: pykka.ActorRef[Any]
    matchmaker: pykka.ActorRef[Any]
    router: Router
    # Slots per server address between callers and the reply-waiter's sockets.
    window: SendWindow
    # The reply-waiter's inbox, for `send`.
    reply_inbox: PollingInbox
    poller: pykka.ActorRef[Any] | None = None
    # The listeners of the running services, by id(service): the finalizer
    # cannot reach the services (they hold the transport), yet must stop these.
    listeners: dict[int, list[pykka.ActorRef[Any]]] = dataclasses.field(default_factory=dict)

    def refs(self) -> list[pykka.ActorRef[Any]]:
        return [r for r in (self.poller, self.reply_waiter, self.matchmaker) if r is not None]

    def send(self, message: ReplyWaiterMessage) -> None:
        """Hand ``message`` to the reply-waiter. Any thread.

        Put straight into its inbox, with no pykka envelope (`SocketActor.deliver`).
        Raises `TransportClosedError` once the reply-waiter has stopped.
        """
        try:
            self.reply_inbox.put(message)
        except pykka.ActorDeadError:
            msg = "the transport is closed"
            raise TransportClosedError(msg) from None


class _Holder:
    """What the finalizer needs, without a reference to the transport itself."""

    def __init__(self) -> None:
        self.actors: _Actors | None = None


def _release(holder: _Holder) -> None:
    # Garbage collection or interpreter exit without close(): ask this
    # process's actors to stop, without waiting for them.
    actors, holder.actors = holder.actors, None
    if actors is None or actors.pid != os.getpid():
        return
    listeners = [ref for refs in actors.listeners.values() for ref in refs]
    for ref in [*listeners, *actors.refs()]:
        with contextlib.suppress(pykka.ActorDeadError):
            ref.stop(block=False)


class Transport:
    """A connection to one matchmaker; clients and servers are built on it.

    Thread-safe: use it from any thread. Its actors start on first use in each
    process, so a transport created before ``fork()`` works in the parent and,
    with new actors, in the child. Also a context manager (``close()`` on exit).
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        spec = settings.matchmaker
        # Fail here, in the caller's thread, on a bad backend location.
        create_matchmaker(spec.kind, spec.location, spec.password).close()
        self.stats = Stats()
        # Re-entrant: a signal handler calling close() runs in whatever thread
        # (the main one) it interrupted, perhaps while that thread holds it.
        self._lock = threading.RLock()
        self._holder = _Holder()
        self._closed = False
        self._servers: set[Service] = set()
        self._finalizer = weakref.finalize(self, _release, self._holder)
        _live.add(self)

    @classmethod
    def from_url(cls, url: str = DEFAULT_URL, conf: cfg.ConfigOpts | None = None) -> Transport:
        """A transport for ``url``; options from ``conf`` (group ``[zmq]``), then the URL's query.

        Raises `ConfigurationError` naming the problem for a bad URL or option.
        """
        base = Settings.from_conf(conf) if conf is not None else None
        return cls(parse_url(url, base))

    @classmethod
    def from_conf(cls, conf: cfg.ConfigOpts, group: str = "zmq") -> Transport:
        """A transport configured by ``conf``'s ``[zmq]`` options (URL: ``matchmaker_url``)."""
        return cls(Settings.from_conf(conf, group))

    @property
    def closed(self) -> bool:
        """Whether `close` was called."""
        return self._closed

    def __repr__(self) -> str:
        return f"<Transport {self.settings.matchmaker.url}{' closed' if self._closed else ''}>"

    # -- actors ---------------------------------------------------------------

    def _actors(self) -> _Actors:
        """Return this process's actors, started on first use (again in a forked child)."""
        actors = self._holder.actors
        if actors is not None and actors.pid == os.getpid():
            return actors
        with self._lock:
            if self._closed:
                msg = f"{self!r} is closed"
                raise TransportClosedError(msg)
            actors = self._holder.actors
            if actors is None or actors.pid != os.getpid():
                actors = self._start_actors()
                self._check_not_closed_meanwhile(actors)
                self._holder.actors = actors
            return actors

    def _check_not_closed_meanwhile(self, actors: _Actors) -> None:
        """Stop ``actors`` and raise if close() ran while they started (lock held).

        Only a signal handler in the starting thread can do that (the lock is
        re-entrant for it); close() has then already let go of ``actors``.
        """
        if self._closed:
            holder = _Holder()
            holder.actors = actors
            _release(holder)
            msg = f"{self!r} is closed"
            raise TransportClosedError(msg)

    def _start_actors(self) -> _Actors:
        settings = self.settings
        spec = settings.matchmaker
        factory: Callable[[], Matchmaker] = lambda: create_matchmaker(  # noqa: E731
            spec.kind, spec.location, spec.password
        )
        cache = RouteCache()
        matchmaker = MatchmakerActor.start(
            factory, cache, settings.matchmaker_ttl, self.stats, settings.lookup_cache_ttl
        )
        window = SendWindow(settings.high_water_mark)
        reply_waiter = ReplyWaiter.start(settings, self.stats, matchmaker, window)
        router = Router(cache, matchmaker, settings.lookup_cache_ttl)
        # The servers of the parent do not run here: forget them.
        self._servers.clear()
        inbox = cast("PollingInbox", reply_waiter.actor_inbox)
        return _Actors(os.getpid(), reply_waiter, matchmaker, router, window, inbox)

    def _poller(self) -> pykka.ActorRef[Any]:
        """The poller of this process, started with the first server."""
        actors = self._actors()
        if actors.poller is None:
            with self._lock:
                if actors.poller is None:
                    actors.poller = Poller.start(self.settings, self.stats)
                    self._check_not_closed_meanwhile(actors)
        return actors.poller

    def _next_id(self) -> str:
        # Unique in the process, not per transport: a closed transport's
        # inproc names are unbound asynchronously, and a new transport may
        # reuse a freed one's id().
        return f"{os.getpid()}-{next(_server_ids)}"

    def _add_service(self, service: Service) -> None:
        with self._lock:
            self._servers.add(service)
            actors = self._holder.actors
            if actors is not None:
                actors.listeners[id(service)] = list(service._listeners)  # noqa: SLF001

    def _discard_service(self, service: Service) -> None:
        with self._lock:
            self._servers.discard(service)
            actors = self._holder.actors
            if actors is not None:
                actors.listeners.pop(id(service), None)

    # -- closing ----------------------------------------------------------------

    def close(self) -> None:
        """Stop every server and actor of this transport; pending calls fail.

        Pending calls fail with `TransportClosedError`.

        Idempotent, callable from any thread (a signal handler included). In a
        forked child it never touches the parent's actors or sockets.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
            servers = list(self._servers)
            self._servers.clear()
            actors, self._holder.actors = self._holder.actors, None
        self._finalizer.detach()
        if actors is None or actors.pid != os.getpid():
            return
        # The reply-waiter goes first: its pending calls fail with
        # TransportClosedError, not with "connection lost" as the servers'
        # sockets close under them.
        _stop_all([actors.reply_waiter])
        for server in servers:
            server._abort()  # noqa: SLF001 - the transport owns its servers' life cycle
        _stop_all(actors.refs())

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _stop_all(refs: list[pykka.ActorRef[Any]]) -> None:
    """Stop ``refs`` together; wait for each, bounded."""
    futures = []
    for ref in refs:
        try:
            futures.append(ref.stop(block=False))
        except pykka.ActorDeadError:
            continue
    for future in futures:
        try:
            future.get(timeout=_STOP_TIMEOUT)
        except (pykka.Timeout, pykka.ActorDeadError):
            _log.warning("an actor did not stop in time", timeout=_STOP_TIMEOUT)


def _reset_locks_in_child() -> None:
    # A thread of the parent may have held a transport's lock, or its stats'
    # (any actor may be counting), at the fork.
    for transport in list(_live):
        transport._lock = threading.RLock()  # noqa: SLF001 - the module's own fork hook
        transport.stats._lock = threading.Lock()  # noqa: SLF001 - the transport's own counters


on_fork_child(_reset_locks_in_child)


def _flush_at_exit() -> None:
    # Interpreter exit after close(): closed sockets send what they queued
    # only while the context lives, and pyzmq does not terminate it at exit,
    # so a cast sent just before exit on a connection still being set up
    # would be lost. Terminate it, bounded by the longest linger plus a
    # second. With an actor still running in this process (a transport not
    # closed, or collected without close() a moment ago), exit at once
    # instead: its sockets would hold termination for the whole bound.
    if any(
        issubclass(ref.actor_class, SocketActor) and ref.is_alive()
        for ref in pykka.ActorRegistry.get_all()
    ):
        return
    linger = max([1.0, *(transport.settings.linger for transport in list(_live))])
    terminate(linger + 1.0)


atexit.register(_flush_at_exit)
