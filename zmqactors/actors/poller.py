"""The poller: the transport's one network socket, and the way to its shared workers.

One poller per transport (per process), started with the first server. It
owns, created, used and closed in its thread, one network ROUTER that
clients' DEALERs connect to, bound when the first server starts and shared
by every server and notification listener of the transport (they all
advertise its address); closed when the last one goes. It reaches the
transport's pool of worker actors through their inboxes, and they reach it
through its own (`zmqactors.actors.worker`).

Each request names its server by its destination (`wire.destination`, after
the header in its first frame): the poller finds the server in a dict,
decoding nothing but the header. It queues the request in that server's
queue for the client it came from
(`zmqactors.core.fairness.FairQueues`: servers and, inside each, clients
served in turn, each server at most ``executor_size`` at once, bounded per
client and in bytes: beyond, a call is answered `ErrorKind.BUSY`), and gives
queued requests to workers, bringing in only as many as the load needs
(`zmqactors.core.balance.Balancer`). A request travels to a worker (`Run`) with
its server's index and its arrival time, so the worker runs the right
`Handler` and drops a call whose caller has given up. A worker announces
itself (`WorkerReady`) and answers every request (`Done`, an empty body for
a cast). Workers
decode bodies in their own threads, so a malformed body can neither slow nor
kill the poller; the poller decodes one only on rare paths (a request for a
server it does not host, one refused as busy or stopping) to answer it.

Longer than 400 lines on purpose: the one socket every server shares, its
CURVE set-up and refusals, and the queues, bounds and answers of all the
transport's servers are one actor's state, owned by one thread; the pure
parts already live in `zmqactors.core` (fairness, balance, refusals).
"""

from __future__ import annotations

import errno
import itertools
import time
from typing import TYPE_CHECKING, assert_never

import pykka
import zmq
from zmq.utils.monitor import parse_monitor_message

from zmqactors import wire
from zmqactors._addresses import advertised_endpoint, is_loopback_endpoint, tcp_endpoint
from zmqactors.actors.base import SocketActor
from zmqactors.actors.frames import send_frames
from zmqactors.actors.messages import (
    AddServer,
    Done,
    DrainServer,
    PollerMessage,
    RemoveServer,
    Run,
    SendReply,
    WorkerReady,
)
from zmqactors.actors.worker import TIMER_TICK
from zmqactors.core.balance import Balancer
from zmqactors.core.fairness import Admission, FairQueues
from zmqactors.core.refusals import REFUSAL_LOG_INTERVAL, RefusalLog
from zmqactors.core.waiter import settle
from zmqactors.errors import ConfigurationError, ProtocolError, ResourceLimitError, SecurityError
from zmqactors.net import security, zap
from zmqactors.net.context import get_context
from zmqactors.net.sockets import monitor as monitor_socket
from zmqactors.net.sockets import network_socket
from zmqactors.options import GROUP_NAME

if TYPE_CHECKING:
    from concurrent.futures import Future

    from zmqactors.actors.inbox import PollingInbox
    from zmqactors.core.handler import Handler
    from zmqactors.core.stats import Stats
    from zmqactors.options import Settings
    from zmqactors.topics import Target

__all__ = ["Poller"]

# A worker whose request started less than this ago is "fast": the next
# request waits for it rather than wake another thread (see Balancer).
FAST_WORKER = 0.001

# How much of an unknown destination an answer repeats.
_NAME_ECHO = 200
# A draining server is done once no request for it came for this long (or
# at drain_timeout): its clients have stopped sending to it.
_DRAIN_QUIET = 0.25


class _Served:
    """The poller's state for one running server."""

    def __init__(self, message: AddServer, index: int, cap: int) -> None:
        self.server_id = message.server_id
        self.target: Target = message.target
        self.destinations = message.destinations
        self.handler: Handler = message.handler
        self.timers = message.timers
        self.index = index
        self.cap = cap
        self.draining = False
        self.drained: list[Future[None]] = []
        # When a request for it last arrived, and when it began to drain.
        self.last_seen = 0.0
        self.drain_started = 0.0
        # A timer tick is queued or running: do not queue another.
        self.ticking = False


class Poller(SocketActor):
    """Owns the transport's inbound sockets; routes requests to the shared workers and back."""

    actor_name = "poller"

    def __init__(self, settings: Settings, stats: Stats, handlers: dict[int, Handler]) -> None:
        super().__init__()
        self._settings = settings
        self._decode_limits = settings.decode_limits
        self._stats = stats
        # The pool's workers, by name, as they announced themselves.
        self._workers: dict[bytes, PollingInbox] = {}
        # The table the workers read a request's `Handler` from; only this thread writes it.
        self._table = handlers
        # Refused handshakes, logged one line per address and reason per interval.
        self._refusals = RefusalLog(REFUSAL_LOG_INTERVAL)
        # Whether this transport warned of a plain-text server on the network.
        self._warned_plain = False
        self._router: zmq.Socket[bytes] | None = None
        self._monitor: zmq.Socket[bytes] | None = None
        self._address = ""
        # The CURVE public key the socket serves with (None: no CURVE).
        self._curve_key: str | None = None
        self._servers: dict[str, _Served] = {}
        # Ids of draining servers whose stop() waits (usually none: O(1) per wake).
        self._drains: set[str] = set()
        self._by_index: dict[int, _Served] = {}
        # The servers whose handlers have timers (notification listeners).
        self._timed: dict[int, _Served] = {}
        # Destination frame -> the indexes of the servers it names (several
        # servers with one name and key take its requests in turn).
        self._routes: dict[bytes, list[int]] = {}
        self._turn = itertools.count()
        self._indexes = itertools.count(1)
        # Each queued request: (arrival, body).
        self._queues: FairQueues[tuple[float, bytes]] = FairQueues(settings.max_queued_bytes)
        self._balancer = Balancer(FAST_WORKER)
        # (server index, client) whose casts stopped the reading (back-pressure), or None.
        self._paused: tuple[int, bytes] | None = None
        self._resume_at = settings.max_queued_per_client // 2

    def on_receive(self, message: PollerMessage) -> str | None:
        """Handle one inbox message (actor thread)."""
        match message:
            case Done():
                self._on_worker(message)
                return None
            case WorkerReady(worker, inbox):
                self._workers[worker] = inbox
                self._balancer.add(worker)
                self._pump()
                return None
            case AddServer():
                return self._add(message)
            case DrainServer():
                self._start_draining(message.server_id, message.future)
                return None
            case RemoveServer():
                self._remove(message.server_id)
                return None
            case SendReply(server_id, client, body):
                if server_id not in self._servers or self._router is None:
                    self._stats.incr("undeliverable_replies")
                else:
                    self._reply(client, body)
                return None
            case _:
                assert_never(message)

    # -- servers ------------------------------------------------------------

    def _add(self, message: AddServer) -> str:
        if self._router is None:
            self._open_router(message)
        elif (message.curve.public_key if message.curve else None) != self._curve_key:
            # Every server of a transport reads the same settings: only a
            # key pair file changed between two starts gets here.
            msg = (
                "every server of a transport shares its socket, which serves with "
                f"CURVE key {self._curve_key}: cannot start {message.target} with "
                f"{message.curve.public_key if message.curve else 'no key'} (did the "
                "curve_secret_key_file change? Close the transport to serve with it)"
            )
            raise SecurityError(msg)
        index = next(self._indexes)
        served = _Served(message, index, message.executor_size)
        self._table[index] = message.handler
        self._queues.add(index, served.cap, self._settings.max_queued_per_client)
        self._servers[message.server_id] = served
        self._by_index[index] = served
        if served.timers:
            self._timed[index] = served
        for dest in message.destinations:
            self._routes.setdefault(dest, []).append(index)
        self.log.info(
            "server started", target=str(message.target), address=self._address, index=index
        )
        return self._address

    def _open_router(self, message: AddServer) -> None:
        """Create, configure and bind the network ROUTER (the first server's start)."""
        settings = self._settings
        try:
            router = network_socket(get_context(), zmq.ROUTER, settings)
        except zmq.ZMQError as exc:
            raise _bind_failure(settings, exc) from None
        # Report replies to vanished clients as errors instead of dropping them silently.
        router.setsockopt(zmq.ROUTER_MANDATORY, 1)
        monitor = None
        try:
            if message.curve is not None:
                security.configure_server(router, message.curve)
                monitor = monitor_socket(router, security.HANDSHAKE_FAILURES)
                # Checked again right before binding: without a ZAP handler
                # libzmq would let every CURVE client in.
                zap.require_authenticator()
            bound = self._bind(router)
        except SecurityError:
            _close_router(router, monitor)
            raise
        except zmq.ZMQError as exc:
            _close_router(router, monitor)
            raise _bind_failure(settings, exc) from None
        self._router = router
        self._curve_key = message.curve.public_key if message.curve else None
        if monitor is not None:
            self._monitor = monitor
            self.watch(monitor, self._on_handshake_failed)
        self.watch(router, self._on_request)
        address = advertised_endpoint(bound, settings.host)
        self._address = address
        if message.curve is None and not self._warned_plain and not is_loopback_endpoint(bound):
            self._warned_plain = True
            self.log.warning(
                "server bound beyond loopback without CURVE: anyone who can reach it "
                "may call it and read its traffic (set curve_secret_key_file and "
                "curve_public_keys_dir)",
                address=address,
                bind_address=settings.bind_address,
                target=str(message.target),
            )
        self.log.info("server socket bound", address=address, curve=message.curve is not None)

    def _on_handshake_failed(self, frames: list[bytes]) -> None:
        """A client was refused: its key is not allowed, it does not speak CURVE, or no ZAP.

        Counted each time, logged once per reason per interval
        (`RefusalLog`): a client retrying in a loop must not flood the log.
        """
        event = parse_monitor_message(frames)
        self._stats.incr("auth_rejections")
        kind = event["event"]
        zap_running = zap.authenticator_running()
        if not zap_running:
            # ZAP_ENFORCE_DOMAIN: without an authenticator libzmq refuses everyone.
            reason = "the ZAP authenticator is not running: every CURVE client is refused"
        elif kind == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
            reason = "key not on the allow-list"
        elif kind == zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL:
            reason = "no CURVE, or a broken handshake"
        else:
            reason = "handshake failed (a client without CURVE?)"
        line = self._refusals.refused(f"{self._address} {reason}", time.monotonic())
        if line is None:
            return
        log = self.log.warning if zap_running else self.log.error
        log(
            "refused a client",
            address=self._address,
            target=self._targets(),
            reason=reason,
            code=int(event["value"]),
            count=line[1],
            interval=REFUSAL_LOG_INTERVAL,
        )

    def _targets(self) -> str:
        """The targets served on the socket, for a log line (a count beyond a few)."""
        servers = list(self._servers.values())
        if len(servers) > 3:  # noqa: PLR2004 - a log line stays short
            return f"{len(servers)} servers"
        return ", ".join(str(served.target) for served in servers)

    def _bind(self, router: zmq.Socket[bytes]) -> str:
        """Bind ``router`` as the settings say; the endpoint libzmq bound (``LAST_ENDPOINT``)."""
        settings = self._settings
        if settings.port_min == 0:
            router.bind(tcp_endpoint(settings.bind_address, 0))
        else:
            router.bind_to_random_port(
                tcp_endpoint(settings.bind_address),
                settings.port_min,
                settings.port_max + 1,
                max_tries=1000,
            )
        endpoint = router.getsockopt(zmq.LAST_ENDPOINT)
        assert isinstance(endpoint, bytes)  # noqa: S101 - LAST_ENDPOINT is a bytes option
        return endpoint.decode()

    def _start_draining(self, server_id: str, future: Future[None]) -> None:
        served = self._servers.get(server_id)
        if served is None:
            settle(future)
            return
        if not served.draining:
            served.draining = True
            served.drain_started = time.monotonic()
        served.drained.append(future)
        self._drains.add(served.server_id)
        self._check_drained(served)

    def _drain_due(self, served: _Served) -> float:
        """When a draining server may be done: quiet for `_DRAIN_QUIET`, or at drain_timeout."""
        limit = self._settings.drain_timeout
        # Quiet counts from the later of the last request and the drain's start:
        # a client that picked this server a moment ago may still be connecting.
        quiet_since = max(served.last_seen, served.drain_started)
        return min(quiet_since + min(_DRAIN_QUIET, limit), served.drain_started + limit)

    def _check_drained(self, served: _Served, now: float | None = None) -> None:
        """Settle a draining server's waiters once it runs nothing and clients went quiet.

        Quiet: no request for it within `_DRAIN_QUIET` seconds (clients have
        dropped its route: a refused call tells its client at once, a
        matchmaker watch or refresh tells the others), or ``drain_timeout``
        since it began to drain.
        """
        if not (served.draining and served.drained and self._queues.idle(served.index)):
            return
        if (time.monotonic() if now is None else now) < self._drain_due(served):
            return
        for future in served.drained:
            settle(future)
        served.drained.clear()
        self._drains.discard(served.server_id)

    def _remove(self, server_id: str) -> None:
        self._drains.discard(server_id)
        served = self._servers.pop(server_id, None)
        if served is None:
            return
        index = served.index
        del self._by_index[index]
        self._timed.pop(index, None)
        for dest in served.destinations:
            indexes = self._routes.get(dest)
            if indexes is not None and index in indexes:
                indexes.remove(index)
                if not indexes:
                    del self._routes[dest]
        left = self._queues.remove(index)
        if left:
            self._stats.incr("rejected_stopping", len(left))
        if self._paused is not None and self._paused[0] == index:
            self._resume()
        # A worker may still be running one of its requests: it finds no
        # handler for a late one, and its answer is counted undeliverable.
        self._table.pop(index, None)
        for future in served.drained:
            settle(future)
        if not self._servers:
            self._close_router()

    def _close_router(self) -> None:
        router, self._router = self._router, None
        monitor, self._monitor = self._monitor, None
        if router is None:
            return
        if monitor is not None:
            self.unwatch(monitor)
        self.unwatch(router)
        _close_router(router, monitor)
        self._paused = None
        self.log.info("server socket closed", address=self._address)
        self._address = ""

    # -- traffic ------------------------------------------------------------

    def _on_request(self, frames: list[bytes]) -> None:
        if len(frames) != 3:  # noqa: PLR2004 - client identity, header and destination, body
            self._stats.incr("protocol_errors")
            self.log.warning("dropped a request", reason=f"{len(frames)} frames, expected 3")
            return
        client, head, body = frames
        try:
            dest = wire.split_header(head)
        except ProtocolError as exc:
            self._stats.incr("protocol_errors")
            self.log.warning("dropped a request", reason=str(exc))
            return
        indexes = self._routes.get(dest)
        if not indexes:
            self._not_served(client, dest, body)
            return
        index = indexes[0] if len(indexes) == 1 else indexes[next(self._turn) % len(indexes)]
        served = self._by_index[index]
        now = time.monotonic()
        served.last_seen = now
        if served.draining and self._refuse_stopping(served, client, body):
            return
        queues = self._queues
        size = len(body)
        admission = queues.admit(index, client, size)
        if admission is not Admission.OK and not self._over_bound(served, client, body, admission):
            return
        queues.push(index, client, (now, body), size, now)
        self._pump()

    def _on_worker(self, done: Done) -> None:
        client = done.client
        body = done.body
        if body:
            # The reply first, the bookkeeping after: the caller waits for
            # it. Even if its server was removed meanwhile.
            if self._router is None:
                self._stats.incr("undeliverable_replies")
            else:
                self._reply(client, body)
        now = time.monotonic()
        self._balancer.done(done.worker, now)
        key = done.index
        self._queues.done(key, client, now)
        served = self._by_index.get(key)
        if served is not None and client == TIMER_TICK:
            served.ticking = False
        self._pump()
        if served is not None:
            self._check_drained(served)

    def _pump(self) -> None:
        """Hand queued requests to workers while the balancer finds one."""
        queues = self._queues
        paused = self._paused
        if paused is not None and queues.queued_for(*paused) <= self._resume_at:
            self._resume()
        if not queues.waiting:
            return
        balancer = self._balancer
        workers = self._workers
        now = time.monotonic()
        # Only servers below their cap may run more: the others' work waits.
        while queues.runnable:
            idle = not balancer.in_progress
            worker = balancer.take(now, queues.waiting)
            if worker is None:
                break
            picked = queues.pop()
            assert picked is not None  # noqa: S101 - runnable said so
            key, client, (arrival, body) = picked
            run = Run(key, client, arrival, body)
            if idle:
                # Nothing else runs: this request's wait is all its latency,
                # and this thread has little left to do before it sleeps.
                _hand(workers[worker], run)
            else:
                # Deferred, like a worker's answer: the worker wakes once this
                # thread sleeps, so neither waits for the other to drop the GIL.
                self.defer(_hand, workers[worker], run)

    def next_deadline(self) -> float | None:
        """When queued requests, a server's timers or a drain should be looked at again."""
        # Only while a server below its cap has work: take() refreshes wake_at then.
        wake = self._balancer.wake_at if self._queues.runnable else None
        for served in self._draining():
            quiet = self._drain_due(served)
            if wake is None or quiet < wake:
                wake = quiet
        for served in self._timed.values():
            if not served.ticking:
                due = served.handler.next_deadline()
                if due is not None and (wake is None or due < wake):
                    wake = due
        return wake

    def _draining(self) -> list[_Served]:
        """Draining servers with waiters and nothing left to run (waiting to go quiet)."""
        if not self._drains:
            return []
        found = (self._servers.get(server_id) for server_id in self._drains)
        return [s for s in found if s is not None and self._queues.idle(s.index)]

    def on_deadline(self, now: float) -> None:
        """Queue due timers; settle quiet drains; hand a slow worker's queue to others."""
        for served in self._draining():
            self._check_drained(served, now)
        for served in self._timed.values():
            if not served.ticking:
                due = served.handler.next_deadline()
                if due is not None and due <= now:
                    served.ticking = True
                    self._queues.push(served.index, TIMER_TICK, (now, b""), 0, now)
        self._pump()

    def _reply(self, client: bytes, body: bytes) -> None:
        router = self._router
        assert router is not None  # noqa: S101 - callers check
        try:
            send_frames(router, (client, wire.HEADER, body), block=False)
        except zmq.ZMQError as exc:
            # The client went away (EHOSTUNREACH) or stopped reading (EAGAIN).
            self._stats.incr("undeliverable_replies")
            self.log.info("reply not delivered", error=str(exc))

    # -- the rare paths: decode to answer -------------------------------------

    def _decode(self, body: bytes) -> wire.Message | None:
        """The message in ``body``, or None (a malformed body is a counted protocol error)."""
        try:
            return wire.decode_body(body, self._decode_limits)
        except ProtocolError as exc:
            self._stats.incr("protocol_errors")
            self.log.warning("dropped a request", reason=str(exc))
            return None

    def _decode_request(self, body: bytes) -> wire.Request | None:
        """The request in ``body``, or None (not a request, or malformed: see `_decode`)."""
        message = self._decode(body)
        return message if isinstance(message, wire.Request) else None

    def _answer(
        self, client: bytes, request: wire.Request, kind: wire.ErrorKind, text: str
    ) -> None:
        """Answer a call or acknowledged cast with an `ErrorReply` (a plain cast gets nothing)."""
        if request.kind is wire.CallKind.CAST:
            return
        exc_type = {
            wire.ErrorKind.BUSY: "zmqactors.errors.ServerBusyError",
        }.get(kind, "zmqactors.errors.NoRespondersError")
        self._reply(client, wire.encode(wire.ErrorReply(request.msg_id, kind, exc_type, text))[1])

    def _not_served(self, client: bytes, dest: bytes, body: bytes) -> None:
        self._stats.incr("not_served")
        request = self._decode_request(body)
        if request is None:
            return
        # From the network: quoted (repr) and cut, never echoed raw.
        key, _, name = dest[:_NAME_ECHO].decode(errors="replace").partition("\0")
        text = f"{self._address} does not serve {key!r} server={name!r} (stopped, or a stale route)"
        self._answer(client, request, wire.ErrorKind.NOT_SERVED, text)

    def _refuse_stopping(self, served: _Served, client: bytes, body: bytes) -> bool:
        """What reaches a draining server: whether it was refused (else it is run).

        A call is answered STOPPING (nothing ran: its client may retry on
        another server); an acknowledged cast gets no answer (its sender
        retries elsewhere); a plain cast or a notification, which nobody could
        retry, is run as if the server were not stopping.
        """
        message = self._decode(body)
        if isinstance(message, wire.Request) and message.kind is wire.CallKind.CAST:
            return False
        if isinstance(message, wire.Notification):
            return False
        self._stats.incr("rejected_stopping")
        if isinstance(message, wire.Request) and message.kind is wire.CallKind.CALL:
            text = f"server {served.target.server} of {served.target.topic} is stopping"
            self._answer(client, message, wire.ErrorKind.STOPPING, text)
        return True

    def _over_bound(
        self, served: _Served, client: bytes, body: bytes, admission: Admission
    ) -> bool:
        """A request beyond a bound: whether to queue it anyway (a plain cast, reading paused).

        A call or acknowledged cast is answered BUSY at once (nothing ran;
        the caller may retry). A plain cast or a notification cannot be
        answered: past its client's bound it is queued and the poller stops
        reading (ZeroMQ's and TCP's queues then push back on the sender,
        whose casts block rather than get lost); past the byte bound it is
        refused and counted.
        """
        message = self._decode(body)
        if message is None:
            return False
        if not isinstance(message, wire.Request) or message.kind is wire.CallKind.CAST:
            # A plain cast or a notification: nobody to tell it is busy.
            if admission is Admission.CLIENT_FULL:
                self._pause(served.index, client)
                return True
            self._stats.incr("busy_refused")
            return False
        request = message
        self._stats.incr("busy_refused")
        if admission is Admission.CLIENT_FULL:
            limit = self._settings.max_queued_per_client
            text = (
                f"server {served.target} is busy: {limit} requests of this client are "
                f"queued (option {GROUP_NAME}.max_queued_per_client)"
            )
        else:
            text = (
                f"server {served.target} is busy: {self._queues.queued_bytes} bytes of "
                f"requests are queued (option {GROUP_NAME}.max_queued_bytes)"
            )
        self._answer(client, request, wire.ErrorKind.BUSY, text)
        return False

    def _pause(self, index: int, client: bytes) -> None:
        if self._paused is None and self._router is not None:
            self._paused = (index, client)
            self._stats.incr("reads_paused")
            self.unwatch(self._router)

    def _resume(self) -> None:
        self._paused = None
        if self._router is not None:
            self.watch(self._router, self._on_request)

    # -- life cycle ---------------------------------------------------------

    def fail_pending(self, error: Exception) -> None:  # noqa: ARG002 - nothing to fail, only to release
        """Release every drain waiter: nothing will be served any more."""
        for served in self._servers.values():
            for future in served.drained:
                settle(future)

    def close_sockets(self) -> None:
        """Close the network socket."""
        self._close_router()
        self._workers.clear()
        self._servers.clear()
        self._by_index.clear()
        self._timed.clear()


def _hand(worker: PollingInbox, run: Run) -> None:
    """Put ``run`` in a worker's inbox (poller thread, deferred)."""
    try:  # noqa: SIM105 - contextlib.suppress costs more, per request
        worker.put(run)
    except pykka.ActorDeadError:
        pass  # the pool stopped: the transport is closing, its callers get errors


def _bind_failure(settings: Settings, exc: zmq.ZMQError) -> Exception:
    """The error for a server socket that cannot be bound."""
    if exc.errno == errno.EMFILE:
        msg = (
            "cannot open a server socket: this process reached its limit of open "
            "files (RLIMIT_NOFILE: raise it with ulimit -n or LimitNOFILE=) or the "
            f"ZeroMQ context its socket limit (ZMQ_MAX_SOCKETS): {exc}"
        )
        return ResourceLimitError(msg)
    if exc.errno == errno.ENFILE:
        msg = (
            "cannot open a server socket: the system's limit of open files is "
            f"reached (fs.file-max): {exc}"
        )
        return ResourceLimitError(msg)
    # libzmq says "No such device" for a name it could neither resolve nor
    # find as an interface: say that in words a user can act on.
    reason = str(exc)
    if exc.errno == errno.ENODEV:
        reason = "not an address of this host, a host name that resolves, nor a network interface"
    msg = (
        f"option {GROUP_NAME}.bind_address: cannot bind a server socket on "
        f"{settings.bind_address!r} (ports {settings.port_min}-{settings.port_max}): {reason}"
    )
    return ConfigurationError(msg)


def _close_router(router: zmq.Socket[bytes], monitor: zmq.Socket[bytes] | None) -> None:
    if monitor is not None:
        router.disable_monitor()
        monitor.close(linger=0)
    router.close()
