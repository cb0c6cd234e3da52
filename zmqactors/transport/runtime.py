"""`Runtime`: the one door between the public API and the actors.

A `Transport` starts one `Runtime` per process (again in a forked child).
Everything above the actors — `RPCClient`, `Notifier`, `Service` (servers
and notification listeners), the CLI and the oslo.messaging driver — goes
through its methods: none of them builds an actor message or holds an actor
reference. Clients' methods run in the caller's thread and cost no hop but
the one hand-off to the reply-waiter (`call`, `cast`, `notify`); a lookup
that misses the route cache adds a round trip to the matchmaker actor.

Longer than 400 lines on purpose: it is the seam (the architecture's rule
that only it builds actor messages), so every client and service path
into the actors, the worker pool's life included, passes through here.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import errno
import functools
import os
import threading
from typing import TYPE_CHECKING, Any, Protocol

import pykka

from zmqactors import wire
from zmqactors.actors.base import SocketActor
from zmqactors.actors.matchmaker import MatchmakerActor
from zmqactors.actors.messages import (
    AddServer,
    DrainServer,
    Refresh,
    Register,
    RemoveServer,
    SendCall,
    SendCast,
    SendReply,
    Unregister,
)
from zmqactors.actors.poller import Poller
from zmqactors.actors.reply_waiter import ReplyWaiter
from zmqactors.actors.worker import Worker
from zmqactors.core.routes import RouteCache
from zmqactors.core.window import SendWindow
from zmqactors.errors import MessagingTimeout, ResourceLimitError, TransportClosedError
from zmqactors.matchmaker import matchmaker_for
from zmqactors.net import limits, security
from zmqactors.topics import matchmaker_key, notification_key
from zmqactors.transport.routing import Router

if TYPE_CHECKING:
    import concurrent.futures
    from collections.abc import Callable, Mapping

    from zmqactors.actors.inbox import PollingInbox
    from zmqactors.actors.messages import ReplyWaiterMessage
    from zmqactors.core.handler import Handler, ServerTracer
    from zmqactors.core.stats import ServerStats, Stats
    from zmqactors.core.waiter import Waiter
    from zmqactors.matchmaker import Matchmaker, Route
    from zmqactors.net.security import ServerCurve
    from zmqactors.options import Settings
    from zmqactors.topics import Target

__all__ = ["Host", "Runtime", "Served"]

# How long a service's requests to the poller and the matchmaker may take.
ACTOR_TIMEOUT = 10.0


class Served(Protocol):
    """What a transport needs of its running services: to abort them, to report them."""

    def abort(self) -> None:
        """Stop at once, without waiting (any thread)."""

    def metrics(self) -> tuple[Mapping[str, str], ServerStats] | None:
        """Its labels (exchange, topic, server) and counters, if it counts (RPC servers)."""


class Host(Protocol):
    """What a service needs of its transport (a `Transport`)."""

    settings: Settings
    stats: Stats

    @property
    def tracing(self) -> ServerTracer | None:
        """OpenTelemetry spans when the tracing option is on, else None."""

    def runtime(self, *, serving: bool = False) -> Runtime:
        """The runtime of this process, started on first use (``serving``: with the poller)."""

    def next_id(self) -> str:
        """A server id unique in this process."""

    def track(self, service: Served) -> None:
        """Remember a running service (for close())."""

    def untrack(self, service: Served) -> None:
        """Forget a service that has stopped."""


def queue_full(target: Target, address: str, method: str, limit: int, timeout: float) -> str:
    """The text of the `MessagingTimeout` for a send queue that stayed full."""
    return (
        f"send queue to {target} at {address} is full ({limit} messages waiting "
        f"beyond ZeroMQ's high-water mark): {method!r} not sent within {timeout}s"
    )


def _closed() -> TransportClosedError:
    return TransportClosedError("the transport is closed")


@dataclasses.dataclass(eq=False)
class Runtime:
    """The actors serving one transport in one process, and the only way to reach them.

    Thread-safe: every method may be called from any thread. Raises
    `TransportClosedError` once the actors have stopped.
    """

    pid: int
    stats: Stats
    reply_waiter: pykka.ActorRef[Any]
    matchmaker: pykka.ActorRef[Any]
    router: Router
    # Slots per server address between callers and the reply-waiter's sockets.
    window: SendWindow
    # The reply-waiter's inbox, for `_send`.
    reply_inbox: PollingInbox
    poller: pykka.ActorRef[Any] | None = None
    # The pool of workers every server of the transport shares (started with
    # the poller, grown to the largest executor_size of its servers), and
    # the table of each server's `Handler` by index (written by the poller,
    # read by workers).
    pool: list[pykka.ActorRef[Any]] = dataclasses.field(default_factory=list)
    handlers: dict[int, Handler] = dataclasses.field(default_factory=dict)
    # Re-entrant: a signal handler closing the transport may run `stop_pool`
    # on the thread that is inside `_grow_pool`.
    pool_lock: threading.RLock = dataclasses.field(default_factory=threading.RLock)
    pool_stopped: bool = False
    # How many running services hold each registration (see `register`).
    registered: collections.Counter[tuple[str, str, str, str | None]] = dataclasses.field(
        default_factory=collections.Counter
    )

    @classmethod
    def start(cls, settings: Settings, stats: Stats) -> Runtime:
        """Start the matchmaker actor and the reply-waiter of this process (caller thread).

        Raises `SecurityError` (before any actor starts) when the pinned server
        keys (``curve_server_keys_dir``) cannot be read or are not sound.
        """
        pins = security.client_pins(settings)
        limits.prepare(settings)
        factory: Callable[[], Matchmaker] = lambda: matchmaker_for(  # noqa: E731
            settings, on_bad_route=lambda: stats.incr("bad_routes")
        )
        cache = RouteCache()
        matchmaker = MatchmakerActor.start(
            factory, cache, settings.matchmaker_ttl, stats, settings.lookup_cache_ttl
        )
        window = SendWindow(settings.high_water_mark)
        reply_waiter = ReplyWaiter.start(settings, stats, matchmaker, window)
        router = Router(cache, matchmaker, settings.lookup_cache_ttl, pins, stats)
        inbox: PollingInbox = reply_waiter.actor_inbox  # type: ignore[assignment] # SocketActor's
        return cls(os.getpid(), stats, reply_waiter, matchmaker, router, window, inbox)

    def start_poller(self, settings: Settings) -> pykka.ActorRef[Any]:
        """The poller, started now if it is not (caller holds the transport's lock)."""
        if self.poller is None:
            self.poller = Poller.start(settings, self.stats, self.handlers)
        return self.poller

    def refs(self) -> list[pykka.ActorRef[Any]]:
        """The transport-wide actors but the worker pool (`stop_pool`)."""
        return [r for r in (self.poller, self.reply_waiter, self.matchmaker) if r is not None]

    def stop_pool(self) -> None:
        """Ask the pool's workers to stop, without waiting; no worker starts after. Any thread.

        Not waited for: a worker inside a slow endpoint stops once it
        returns (its answer to a closed poller times out), as pykka's stop
        cannot interrupt it.
        """
        with self.pool_lock:
            self.pool_stopped = True
            pool, self.pool = self.pool, []
        for ref in pool:
            _stop_quietly(ref)

    # -- routes -------------------------------------------------------------

    def route(self, target: Target) -> Route:
        """One route of ``target``, taking its servers in turn; `NoRespondersError` if none."""
        return self.router.pick(target)

    def routes(self, target: Target) -> tuple[Route, ...]:
        """Every route of ``target`` (fanout: looked up afresh); `NoRespondersError` if none."""
        return self.router.routes(target) if target.fanout else (self.router.pick(target),)

    def lookup(self, key: str) -> tuple[Route, ...]:
        """The reachable routes registered under matchmaker ``key`` (maybe none)."""
        return self.router.lookup(key)[0]

    def refresh(self, target: Target) -> None:
        """Ask the matchmaker actor to look ``target`` up again, in the background."""
        try:
            self.matchmaker.tell(Refresh(matchmaker_key(target)))
        except pykka.ActorDeadError:
            raise _closed() from None

    # -- clients: one hand-off to the reply-waiter ------------------------------

    def call(  # noqa: PLR0917 - the fields of one call, in the order of SendCall
        self,
        route: Route,
        frames: tuple[bytes, bytes],
        msg_id: bytes,
        target: Target,
        method: str,
        future: concurrent.futures.Future[Any] | Waiter,
        *,
        deadline: float,
        timeout: float,
        monitor: float | None = None,
    ) -> None:
        """Send a call; the reply-waiter settles ``future`` with its outcome.

        Waits for a slot of the send window to ``route`` until ``deadline``
        (monotonic); if none frees, the call is not sent and ``future`` gets
        `MessagingTimeout` naming the full queue (and ``timeout``).
        """
        if not self.window.acquire(route.address, deadline):
            text = queue_full(target, route.address, method, self.window.limit, timeout)
            future.set_exception(MessagingTimeout(text))
            return
        header, body = frames
        key = matchmaker_key(target)
        retry = None
        if target.server is None:
            # A topic call: if nothing ran where it went, once to another server.
            retry = functools.partial(self._call_elsewhere, route, target, method)
        self._send(
            SendCall(
                route.address,
                (header + wire.destination(key, route.server), body),
                msg_id,
                deadline,
                target,
                method,
                future,
                monitor,
                route.server_key,
                credited=True,
                retry=retry,
            )
        )

    def _call_elsewhere(
        self, failed: Route, target: Target, method: str, call: SendCall
    ) -> SendCall | None:
        """The same call to another server of the topic, or None (reply-waiter's thread).

        Called once, when the call failed where nothing ran. Never waits: a
        cached route only, and a send-window slot only if one is free now.
        """
        found = self._elsewhere(failed, target, call.frames)
        if found is None:
            return None
        other, frames = found
        return SendCall(
            other.address,
            frames,
            call.msg_id,
            call.deadline,
            target,
            method,
            call.future,
            call.monitor,
            other.server_key,
            credited=True,
        )

    def _cast_elsewhere(
        self, failed: Route, target: Target, method: str, cast: SendCast
    ) -> SendCast | None:
        """The same cast to another server of the topic, or None (reply-waiter's thread)."""
        found = self._elsewhere(failed, target, cast.frames)
        if found is None:
            return None
        other, frames = found
        return SendCast(other.address, frames, target, method, other.server_key, credited=True)

    def _elsewhere(
        self, failed: Route, target: Target, frames: tuple[bytes, bytes]
    ) -> tuple[Route, tuple[bytes, bytes]] | None:
        """Mark ``failed`` gone; another cached route with a free window slot, and its frames."""
        self.router.mark_gone(matchmaker_key(target), failed)
        other = self.router.pick_other(target, failed)
        if other is None:
            return None
        try:
            if not self.window.acquire(other.address, 0.0):
                return None
        except TransportClosedError:
            return None
        self.stats.incr("retried_not_run")
        body = frames[1]
        dest = wire.destination(matchmaker_key(target), other.server)
        return other, (wire.HEADER + dest, body)

    def cast(
        self,
        routes: tuple[Route, ...],
        frames: tuple[bytes, bytes],
        target: Target,
        method: str,
        *,
        deadline: float,
        timeout: float,
    ) -> None:
        """Send a cast to each of ``routes``, waiting for a send-window slot until ``deadline``.

        Raises `MessagingTimeout` (mentioning ``timeout``) at the first route
        whose queue stays full; the routes before it got the cast.
        """
        key = matchmaker_key(target)
        topic_cast = target.server is None and not target.fanout
        for route in routes:
            retry = None
            if topic_cast:
                retry = functools.partial(self._cast_elsewhere, route, target, method)
            self._send_held(route, key, frames, target, method, deadline, timeout, retry)

    def _send_held(  # noqa: PLR0917 - one cast's route, frames, labels and wait
        self,
        route: Route,
        key: str,
        frames: tuple[bytes, bytes],
        target: Target,
        label: str,
        deadline: float,
        timeout: float,
        retry: Callable[[SendCast], SendCast | None] | None = None,
    ) -> None:
        """One cast to ``route`` once a send-window slot frees (until ``deadline``).

        Raises `MessagingTimeout` (mentioning ``timeout``) if none does.
        """
        if not self.window.acquire(route.address, deadline):
            limit = self.window.limit
            raise MessagingTimeout(queue_full(target, route.address, label, limit, timeout))
        header, body = frames
        dest = wire.destination(key, route.server)
        self._send(
            SendCast(
                route.address,
                (header + dest, body),
                target,
                label,
                route.server_key,
                credited=True,
                retry=retry,
            )
        )

    def notify(
        self,
        routes: tuple[Route, ...],
        frames: tuple[bytes, bytes],
        target: Target,
        label: str,
        *,
        deadline: float,
        timeout: float,
    ) -> int:
        """Send one copy to one member of each pool among ``routes``; how many were sent.

        Like a cast, each copy waits for a send-window slot to its listener
        until ``deadline``: a listener slower than its notifier slows the
        notifier down rather than lose what it was sent. Raises
        `MessagingTimeout` (mentioning ``timeout``) at the first pool whose
        queue stays full; the pools before it got their copy.
        """
        pools: dict[str, list[Route]] = {}
        for route in routes:
            # A listener registers as "<hex id>:<pool>"; the id has no ':'.
            pools.setdefault(route.server.partition(":")[2], []).append(route)
        turn = self.router.turn()
        key = notification_key(target)
        for members in pools.values():
            route = members[turn % len(members)]
            self._send_held(route, key, frames, target, label, deadline, timeout)
        return len(pools)

    def post(  # noqa: PLR0917 - where, to whom, what, and the labels of a cast
        self,
        address: str,
        dest: bytes,
        frames: tuple[bytes, bytes],
        target: Target,
        label: str,
        server_key: str | None,
    ) -> None:
        """Send one message to server ``dest`` (`wire.destination`) at ``address``.

        Without a window slot, never waiting (a listener's requeues: refused
        and counted once that connection's backlog is full).
        """
        header, body = frames
        self._send(SendCast(address, (header + dest, body), target, label, server_key))

    def _send(self, message: ReplyWaiterMessage) -> None:
        # Straight into the reply-waiter's inbox, with no pykka envelope
        # (`SocketActor.deliver`): the hand-off of a call's path.
        try:
            self.reply_inbox.put(message)
        except pykka.ActorDeadError:
            raise _closed() from None

    # -- services -----------------------------------------------------------------

    def add_server(  # noqa: PLR0917 - the fields of AddServer
        self,
        server_id: str,
        label: Target,
        destinations: tuple[bytes, ...],
        executor_size: int,
        handler: Handler,
        timers: bool,
        curve: ServerCurve | None,
    ) -> str:
        """Serve ``destinations`` with ``handler`` on the shared pool; the advertised address.

        Grows the pool to ``executor_size`` workers first. The poller must be
        running (``Transport.runtime(serving=True)``). Raises
        `ConfigurationError`, `ResourceLimitError` or `SecurityError` when
        the transport's socket cannot be bound.
        """
        if self.poller is None:
            raise _closed()
        message = AddServer(server_id, label, destinations, executor_size, handler, timers, curve)
        try:
            address: str = self.poller.ask(message, block=True, timeout=ACTOR_TIMEOUT)
        except pykka.ActorDeadError:
            raise _closed() from None
        try:
            self._grow_pool(executor_size)
        except BaseException:
            self.remove_server(server_id)
            raise
        return address

    def _grow_pool(self, size: int) -> None:
        """Start workers until the pool has ``size`` (it never shrinks while the poller runs)."""
        poller = self.poller
        if poller is None:
            raise _closed()
        inbox: PollingInbox = poller.actor_inbox  # type: ignore[assignment] # SocketActor's
        with self.pool_lock:
            while len(self.pool) < size:
                if self.pool_stopped:
                    raise _closed()
                try:
                    ref = Worker.start(inbox, self.handlers, b"%d" % len(self.pool))
                except OSError as exc:  # its doorbell's eventfd
                    raise _resource_limit("a worker thread", exc) from None
                self.pool.append(ref)
                if self.pool_stopped:  # closed (by a signal handler) as it started
                    _stop_quietly(ref)
                    raise _closed()

    def register(self, key: str, server: str, address: str, server_key: str | None) -> None:
        """Register ``address`` under ``key`` and wait for the matchmaker actor to confirm.

        Counted: servers of one transport share its address, so two with
        one key and name make one registration, which stays until both
        have unregistered.
        """
        entry = (key, server, address, server_key)
        self.matchmaker.ask(Register(*entry), timeout=ACTOR_TIMEOUT)
        with self.pool_lock:
            self.registered[entry] += 1

    def unregister(self, key: str, server: str, address: str, server_key: str | None) -> None:
        """Undo `register`; raises pykka's ``ActorDeadError`` or ``Timeout`` on failure."""
        entry = (key, server, address, server_key)
        with self.pool_lock:
            self.registered[entry] -= 1
            if self.registered[entry] > 0:
                return
            del self.registered[entry]
        self.matchmaker.ask(Unregister(*entry), timeout=ACTOR_TIMEOUT)

    def drain_server(self, server_id: str, drained: concurrent.futures.Future[None]) -> None:
        """Tell the poller to take no new requests; ``drained`` is set when none run."""
        if self.poller is None:
            raise _closed()
        self.poller.ask(DrainServer(server_id, drained), timeout=ACTOR_TIMEOUT)

    def remove_server(self, server_id: str) -> None:
        """Close a server's sockets in the poller (errors suppressed: it may be gone)."""
        if self.poller is None:
            return
        try:
            self.poller.ask(RemoveServer(server_id), timeout=ACTOR_TIMEOUT)
        except (pykka.ActorDeadError, pykka.Timeout):
            return

    def send_reply(self, server_id: str, client: bytes, body: bytes) -> None:
        """Have the poller send ``body`` to ``client`` of a server (a deferred reply)."""
        if self.poller is None:
            raise _closed()
        try:
            self.poller.tell(SendReply(server_id, client, body))
        except pykka.ActorDeadError:
            raise _closed() from None


def _resource_limit(what: str, exc: OSError) -> Exception:
    """`ResourceLimitError` for a descriptor limit, else ``exc`` itself."""
    if exc.errno in {errno.EMFILE, errno.ENFILE}:
        scope = "this process (RLIMIT_NOFILE)" if exc.errno == errno.EMFILE else "the system"
        return ResourceLimitError(f"cannot start {what}: the open-file limit of {scope}: {exc}")
    return exc


def _stop_quietly(ref: pykka.ActorRef[Any]) -> None:
    with contextlib.suppress(pykka.ActorDeadError):
        ref.stop(block=False)


def actors_alive() -> bool:
    """Whether an actor of ours still runs in this process (any thread)."""
    return any(
        issubclass(ref.actor_class, SocketActor) and ref.is_alive()
        for ref in pykka.ActorRegistry.get_all()
    )
