"""`Transport`: a connection to one matchmaker, and the actors of this process behind it."""

from __future__ import annotations

import atexit
import contextlib
import itertools
import os
import threading
import weakref
from typing import TYPE_CHECKING, Any, Self

import pykka
import structlog

from zmqactors.core.stats import Stats
from zmqactors.errors import TransportClosedError
from zmqactors.matchmaker import matchmaker_for
from zmqactors.net.context import current_pid, exit_linger, on_fork_child, terminate
from zmqactors.options import DEFAULT_URL, Settings, parse_url
from zmqactors.transport.metrics import MetricsEndpoint
from zmqactors.transport.runtime import Runtime, actors_alive
from zmqactors.transport.tracing import tracing_for

if TYPE_CHECKING:
    from collections.abc import Mapping
    from types import TracebackType

    from oslo_config import cfg

    from zmqactors.core.stats import ServerStats
    from zmqactors.transport.runtime import Served

__all__ = ["Transport"]

_log = structlog.get_logger("zmqactors.transport")

# How long close() waits for each actor to finish its clean-up.
_STOP_TIMEOUT = 5.0
_live: weakref.WeakSet[Transport] = weakref.WeakSet()
_server_ids = itertools.count()


class _Holder:
    """What the finalizer needs, without a reference to the transport itself."""

    def __init__(self) -> None:
        self.actors: Runtime | None = None
        # The metrics endpoint (metrics_port), in the process that started it.
        self.metrics: MetricsEndpoint | None = None


def _release(holder: _Holder) -> None:
    # Garbage collection or interpreter exit without close(): ask this
    # process's actors to stop, without waiting for them.
    metrics, holder.metrics = holder.metrics, None
    if metrics is not None:
        metrics.close()
    actors, holder.actors = holder.actors, None
    if actors is None or actors.pid != os.getpid():
        return
    actors.stop_pool()
    for ref in actors.refs():
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
        # Fail here, in the caller's thread, on a bad backend location.
        matchmaker_for(settings).close()
        self.stats = Stats()
        # OpenTelemetry spans (the tracing option), or None: nothing imported.
        self.tracing = tracing_for(settings)
        # Re-entrant: a signal handler calling close() runs in whatever thread
        # (the main one) it interrupted, perhaps while that thread holds it.
        self._lock = threading.RLock()
        self._holder = _Holder()
        self._closed = False
        self._servers: set[Served] = set()
        self._finalizer = weakref.finalize(self, _release, self._holder)
        # Not at interpreter exit: `_flush_at_exit` closes what is still open,
        # and this, run first, would stop the actors without waiting for them.
        self._finalizer.atexit = False
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

    def runtime(self, *, serving: bool = False) -> Runtime:
        """The `Runtime` of this process, started on first use (again in a forked child).

        The seam between the public API and the actors: clients, services,
        the CLI and the oslo.messaging driver reach the actors only through
        it. ``serving`` also starts the poller (the first server does).
        Raises `TransportClosedError` once the transport is closed.
        """
        actors = self._holder.actors
        # current_pid(): no system call on every call's path.
        if actors is None or actors.pid != current_pid():
            actors = self._start()
        if serving and actors.poller is None:
            with self._lock:
                if actors.poller is None:
                    actors.start_poller(self.settings)
                    self._check_not_closed_meanwhile(actors)
        return actors

    def _start(self) -> Runtime:
        with self._lock:
            if self._closed:
                msg = f"{self!r} is closed"
                raise TransportClosedError(msg)
            actors = self._holder.actors
            if actors is None or actors.pid != os.getpid():
                # The servers of the parent do not run here: forget them.
                self._servers.clear()
                actors = Runtime.start(self.settings, self.stats)
                self._check_not_closed_meanwhile(actors)
                self._holder.actors = actors
                if self.settings.metrics_port and self._holder.metrics is None:
                    self._holder.metrics = MetricsEndpoint(self)
            return actors

    def _check_not_closed_meanwhile(self, actors: Runtime) -> None:
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

    @staticmethod
    def next_id() -> str:
        """A server id unique in this process (for `Service`'s inproc names)."""
        # Unique in the process, not per transport: a closed transport's
        # inproc names are unbound asynchronously, and a new transport may
        # reuse a freed one's id().
        return f"{os.getpid()}-{next(_server_ids)}"

    def track(self, service: Served) -> None:
        """Remember a started service (close() aborts it)."""
        with self._lock:
            self._servers.add(service)

    def served_stats(self) -> list[tuple[Mapping[str, str], ServerStats]]:
        """Labels and counters of each running service that counts (for the metrics)."""
        with self._lock:
            servers = list(self._servers)
        return [found for found in (s.metrics() for s in servers) if found is not None]

    def untrack(self, service: Served) -> None:
        """Forget a service that has stopped."""
        with self._lock:
            self._servers.discard(service)

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
            metrics, self._holder.metrics = self._holder.metrics, None
        if metrics is not None:
            metrics.close()
        self._finalizer.detach()
        if actors is None or actors.pid != os.getpid():
            return
        # The reply-waiter goes first: its pending calls fail with
        # TransportClosedError, not with "connection lost" as the servers'
        # sockets close under them.
        # It may wait ``linger`` for handshakes, then send the casts it holds
        # while their servers are connected (exit_flush_timeout at most).
        linger = self.settings.linger
        flush = max(linger, self.settings.exit_flush_timeout)
        _stop_all([actors.reply_waiter], _STOP_TIMEOUT + linger + flush)
        for server in servers:
            server.abort()
        actors.stop_pool()
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


def _stop_all(refs: list[pykka.ActorRef[Any]], timeout: float = _STOP_TIMEOUT) -> None:
    """Stop ``refs`` together; wait for each, at most ``timeout`` seconds."""
    futures = []
    for ref in refs:
        try:
            futures.append(ref.stop(block=False))
        except pykka.ActorDeadError:
            continue
    for future in futures:
        try:
            future.get(timeout=timeout)
        except (pykka.Timeout, pykka.ActorDeadError):
            _log.warning("an actor did not stop in time", timeout=timeout)


def _reset_locks_in_child() -> None:
    # A thread of the parent may have held a transport's lock, or its stats'
    # (any actor may be counting), at the fork.
    for transport in list(_live):
        transport._lock = threading.RLock()  # noqa: SLF001 - the module's own fork hook
        transport.stats._lock = threading.Lock()  # noqa: SLF001 - the transport's own counters


on_fork_child(_reset_locks_in_child)


def _flush_at_exit() -> None:
    # Interpreter exit. A transport still open is closed first: a cast that
    # returned was accepted, and a process that ends without close() (oslo's
    # simulator does; a script often does) must not lose it. Its reply-waiter
    # sends what its inbox still holds before it stops (the stop comes after
    # them), and its servers are unregistered rather than left to expire.
    # Then closed sockets send what they queued, but only while the context
    # lives, and pyzmq does not terminate it at exit: terminate it, bounded
    # by the longest linger a socket was closed with (a reply-waiter that
    # sent casts to connected servers gives its ROUTER what is left of
    # exit_flush_timeout) plus a second; it ends as soon as every
    # socket has sent what it queued or its linger ran out. With an actor
    # still running in this process (one that did not stop in time), exit
    # at once instead: its sockets would hold termination for the whole bound.
    for transport in list(_live):
        try:
            transport.close()
        except Exception:  # noqa: BLE001 - the exit goes on; say why it could not flush
            _log.warning("could not close a transport at exit", transport=repr(transport))
    if actors_alive():
        return
    linger = max([1.0, exit_linger(), *(transport.settings.linger for transport in list(_live))])
    terminate(linger + 1.0)


atexit.register(_flush_at_exit)
