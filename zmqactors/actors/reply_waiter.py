"""The reply-waiter: a client's outbound connections, its pending calls and their deadlines.

Runs in its own thread; owns ONE ROUTER that connects to every server address
it sends to, and one monitor for that ROUTER. Caller threads hand it
`SendCall`/`SendCast` through its inbox; it sends the frames, keeps each call's
future by message id, and resolves that future itself when the reply arrives
or the deadline passes, so the caller wakes with no further hop. A reply for
an id it no longer holds (the call timed out) is dropped and counted as
``late_replies``.

Each connection is named by a routing id of this actor's choosing
(``ZMQ_CONNECT_ROUTING_ID``, set right before each ``connect``, never used
twice), so a reply says which connection it came on. A reply is bound to its
call: it is accepted only from the connection the call went out on, that is
from the one connection to the address (and, with CURVE, the server key) the
caller picked. A reply or heartbeat carrying a pending call's id that arrives
on any other connection (another server's, or an earlier, closed one to the
same address) is dropped and counted (``misrouted_replies``), and the call
still waits for its own server; ids are random (`wire.new_msg_id`), so
another server cannot guess them either.

The work per call and per reply does not depend on how many servers this
client has reached: the thread polls three things (its doorbell, the ROUTER
and the monitor), connections are found by dict look-ups, and its timers
(deadlines, idle connections, backlog retries) are heaps or a set of the
addresses whose backlog is not empty.

Longer than 400 lines on purpose: sending, the backlog, the connection
monitor, idle connections and the deadlines all read and change one table of
pending calls and one table of connections, in this actor's thread; the pure
parts it uses are in `zmqactors.core` already (`window`, `waiter`), and
splitting the rest would spread those tables across files.

A connection to a server whose route carries a CURVE key is a CURVE client
connection with this transport's key pair (`zmqactors.net.security`; libzmq
takes the CURVE options per connection, when ``connect`` is called). Failing
closed, a transport with a key pair sends nothing to a server without a key,
one without sends nothing to a server that has one, and a server that refuses
the handshake fails the calls waiting on it with `SecurityError`.

Nothing is dropped for a full send queue. A message that meets its
connection at the high-water mark (the server reads slower than callers send)
or a connection the ROUTER cannot route to yet waits in a backlog per
address; the backlog is retried on a short timer (a ROUTER's POLLOUT says
nothing about one peer) and as soon as the monitor reports the connection's
handshake; a call still waiting there at its deadline fails with
`MessagingTimeout`. The backlog is bounded by the `SendWindow`: callers take
a slot per message before they tell this actor and block, in their own
thread, while the address has ``high_water_mark`` messages in the inbox and
the backlog; this actor gives the slot back once ZeroMQ has the message.
Messages sent without a slot (notifications, the oslo.messaging driver) are
refused and counted (``send_failures``) when the backlog is that full.

It also watches every connection (the monitor's events name the endpoint,
which is the address). When a server cannot be reached (connection refused)
or its connection drops, the connection is closed (``disconnect``),
discarding what it still queued, and the calls waiting on that address fail
at once: `NoRespondersError` if the request never left (nothing ran),
`MessagingTimeout` if the connection was up (the outcome is unknown, as with
a timeout). The matchmaker actor is told to route around the address for a
while. A connection with no call pending that sent nothing and got no
reply for ``connection_idle_timeout`` seconds is closed too; the next message to its
address opens a new one, with a new routing id.
"""

from __future__ import annotations

import collections
import enum
import errno
import heapq
import itertools
import math
import os
import resource
import time
from typing import TYPE_CHECKING, Any, assert_never

import pykka
import zmq
from zmq.utils.monitor import parse_monitor_message

from zmqactors import wire
from zmqactors.actors.base import SocketActor
from zmqactors.actors.frames import readable, send_routed
from zmqactors.actors.messages import ReplyWaiterMessage, SendCall, SendCast, Unreachable
from zmqactors.core.waiter import settle
from zmqactors.core.window import SendWindow
from zmqactors.errors import (
    MessagingError,
    MessagingTimeout,
    NoRespondersError,
    ProtocolError,
    ResourceLimitError,
    SecurityError,
)
from zmqactors.net import security
from zmqactors.net.context import get_context, lingering
from zmqactors.net.sockets import monitor as monitor_socket
from zmqactors.net.sockets import network_socket

if TYPE_CHECKING:
    from concurrent.futures import Future

    from zmqactors.core.stats import Stats
    from zmqactors.core.waiter import Waiter
    from zmqactors.net.keys import KeyPair
    from zmqactors.options import Settings

__all__ = ["ReplyWaiter"]

# Answers that say the request did not run: a call may go to another server.
_NOTHING_RAN = frozenset({wire.ErrorKind.NOT_SERVED, wire.ErrorKind.STOPPING})

# Rebuild the deadline heap when it holds this many more entries than there
# are pending calls (answered calls leave their entry behind until then).
_HEAP_SLACK = 4096
# How often a non-empty backlog is tried again, in seconds: the ROUTER's
# POLLOUT is not per peer, so nothing else says that one peer's queue drained.
# Each round that sends nothing doubles the interval up to the maximum (a
# server that stopped reading costs a few tries a second, not a thousand).
_RETRY_INTERVAL = 0.001
_RETRY_MAX = 0.064
_MONITORED = (
    zmq.EVENT_CONNECTED
    | zmq.EVENT_DISCONNECTED
    | zmq.EVENT_CONNECT_RETRIED
    | zmq.EVENT_HANDSHAKE_SUCCEEDED
    | security.HANDSHAKE_FAILURES
)
_EHOSTUNREACH = errno.EHOSTUNREACH


def _set_result(future: Future[Any] | Waiter, result: Any) -> None:
    settle(future, result=result)


def _set_error(future: Future[Any] | Waiter, error: BaseException) -> None:
    settle(future, error=error)


def _limit_error(what: str, exc: zmq.ZMQError) -> ResourceLimitError:
    return ResourceLimitError(
        f"cannot {what}: {exc.strerror} (the ZeroMQ context's socket limit, option "
        "max_sockets, or the process's open-file limit, RLIMIT_NOFILE, is reached)"
    )


def _out_of_descriptors() -> bool:
    """Whether this process has reached its open-file limit (one open and close to ask)."""
    try:
        fd = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        return exc.errno == errno.EMFILE
    os.close(fd)
    return False


class _Outcome(enum.Enum):
    SENT = enum.auto()  # ZeroMQ took it
    QUEUED = enum.auto()  # in the address's backlog, sent when the connection takes it
    REFUSED = enum.auto()  # an uncredited message and the backlog is full


class _Connection:
    """One outgoing connection of the ROUTER: to ``address``, named ``routing_id``."""

    __slots__ = (
        "address",
        "backlog",
        "fd",
        "last_used",
        "misrouted_logged",
        "one_way",
        "pending",
        "ready",
        "routing_id",
        "server_key",
    )

    def __init__(self, address: str, routing_id: bytes, server_key: str | None) -> None:
        # Also the endpoint given to connect(), which the monitor's events name.
        self.address = address
        self.routing_id = routing_id
        # The CURVE key the connection was made for (None: plain).
        self.server_key = server_key
        # The TCP socket's descriptor once connected (EVENT_CONNECTED).
        self.fd: int | None = None
        # Its handshake succeeded: what ZeroMQ queued for it can leave.
        self.ready = False
        # Messages waiting until the connection takes them, in order.
        self.backlog: collections.deque[SendCall | SendCast] = collections.deque()
        # The ids of the calls sent (or queued) on it and not yet answered.
        self.pending: set[bytes] = set()
        # When it last sent a message or settled a call (idle since then).
        self.last_used = time.monotonic()
        # Its misrouted replies were logged (once per connection).
        self.misrouted_logged = False
        # A cast or notification went out on it: at the close, ZeroMQ may
        # still hold some for a server that reads slower than they were sent.
        self.one_way = False


_Submitted = tuple[_Outcome, _Connection]


class _Pending:
    """A call sent (or queued) and not yet answered: its message and what changes."""

    __slots__ = ("alive_until", "call", "conn", "queued", "sent")

    def __init__(self, call: SendCall, conn: _Connection, sent: float, *, queued: bool) -> None:
        self.call = call
        # The only connection its reply may come from.
        self.conn = conn
        self.queued = queued
        self.sent = sent
        self.alive_until = sent + call.monitor if call.monitor is not None else call.deadline

    def due(self) -> float:
        """When the call fails unless a reply (or, with a monitor, a heartbeat) comes."""
        return min(self.call.deadline, self.alive_until)


class ReplyWaiter(SocketActor):
    """Sends requests, correlates replies by message id, enforces deadlines."""

    actor_name = "reply-waiter"

    def __init__(
        self,
        settings: Settings,
        stats: Stats,
        matchmaker: pykka.ActorRef[Any],
        window: SendWindow | None = None,
    ) -> None:
        super().__init__()
        self._settings = settings
        # Read once: each read of the property builds a new value.
        self._decode_limits = settings.decode_limits
        self._window = SendWindow(settings.high_water_mark) if window is None else window
        self._stats = stats
        self._matchmaker = matchmaker
        self._keys: KeyPair | None = None
        # Made at the first send (a client that never sends opens no socket).
        self._router: zmq.Socket[bytes] | None = None
        self._monitor: zmq.Socket[bytes] | None = None
        self._ids = itertools.count(1)
        self._conns: dict[str, _Connection] = {}
        self._by_id: dict[bytes, _Connection] = {}
        # Addresses whose backlog is not empty, and when to try them again.
        self._blocked: set[str] = set()
        self._retry_at: float | None = None
        self._retry_interval = _RETRY_INTERVAL
        # (when to look, routing id): connections that may have gone idle.
        self._idle: list[tuple[float, bytes]] = []
        self._pending: dict[bytes, _Pending] = {}
        self._deadlines: list[tuple[float, bytes]] = []

    def on_receive(self, message: ReplyWaiterMessage) -> None:
        """Handle one inbox message (actor thread)."""
        match message:
            case SendCall():
                self._send_call(message)
            case SendCast():
                self._send_cast(message)
            case _:
                assert_never(message)

    def _send_cast(self, message: SendCast) -> None:
        submitted = self._submit(message)
        if isinstance(submitted, MessagingError):
            if isinstance(submitted, SecurityError):
                self._stats.incr("security_refusals")
            else:
                self._stats.incr("send_failures")
            self.log.warning("cast not sent", address=message.address, error=str(submitted))
        elif submitted[0] is _Outcome.REFUSED:
            self.log.warning("cast dropped: send queue full", address=message.address)

    # -- connections --------------------------------------------------------

    def _client_keys(self, address: str, server_key: str | None) -> KeyPair | None:
        """The key pair to connect to ``address`` with (None: plain); `SecurityError` if refused."""
        configured = self._settings.curve_secret_key_file is not None
        if server_key is None:
            if configured:
                msg = (
                    f"the server at {address} advertises no CURVE key, and this transport "
                    "talks CURVE only (curve_secret_key_file is set)"
                )
                raise SecurityError(msg)
            return None
        if not configured:
            msg = (
                f"the server at {address} requires CURVE: set curve_secret_key_file "
                "to a key pair on its allow-list"
            )
            raise SecurityError(msg)
        if self._keys is None:
            self._keys = security.client_key_pair(self._settings)
        return self._keys

    def _socket(self) -> zmq.Socket[bytes]:
        """The ROUTER (and its monitor), made now if needed; `ResourceLimitError` at a limit."""
        if self._router is not None:
            return self._router
        try:
            sock = network_socket(get_context(), zmq.ROUTER, self._settings)
        except zmq.ZMQError as exc:
            if exc.errno == errno.EMFILE:
                raise _limit_error("open the client's socket", exc) from None
            raise
        try:
            # Refuse, rather than drop, a message for a peer that cannot take it.
            sock.setsockopt(zmq.ROUTER_MANDATORY, 1)
            monitor = monitor_socket(sock, _MONITORED)
        except (zmq.ZMQError, ResourceLimitError):
            sock.close(linger=0)
            raise
        self._router, self._monitor = sock, monitor
        self.watch(sock, self._on_reply)
        self.watch(monitor, self._on_event)
        return sock

    def _connection(self, address: str, server_key: str | None) -> _Connection:
        """The connection to ``address``, opened now if there is none.

        Raises `SecurityError` when client and server disagree on CURVE,
        `ResourceLimitError` at a socket limit and `NoRespondersError` for an
        address libzmq refuses; nothing is sent then.
        """
        conn = self._conns.get(address)
        if conn is not None:
            if conn.server_key == server_key:
                return conn
            # The server at this address restarted with another key.
            self._discard_backlog(conn, "server key changed")
            self._fail_calls(conn, NoRespondersError(f"the server at {address} changed its key"))
            self._close(conn, discard=True)
        keys = self._client_keys(address, server_key)
        sock = self._socket()
        # Events of an earlier connection to this endpoint must not be read
        # as the new one's: take what the monitor already has first.
        self._drain_monitor()
        routing_id = b"c%x" % next(self._ids)
        if keys is not None and server_key is not None:
            security.configure_client(sock, keys, server_key)
        sock.setsockopt(zmq.CONNECT_ROUTING_ID, routing_id)
        try:
            sock.connect(address)
        except zmq.ZMQError as exc:
            if exc.errno == errno.EMFILE:
                raise _limit_error(f"connect to {address}", exc) from None
            msg = f"cannot connect to {address}: {exc.strerror}"
            raise NoRespondersError(msg) from None
        conn = _Connection(address, routing_id, server_key)
        self._conns[address] = conn
        self._by_id[routing_id] = conn
        idle = self._settings.connection_idle_timeout
        if idle:
            heapq.heappush(self._idle, (conn.last_used + idle, routing_id))
        return conn

    def _close(self, conn: _Connection, *, discard: bool) -> None:
        """Close ``conn`` (``discard``: drop what ZeroMQ still queued for it)."""
        if self._conns.get(conn.address) is conn:
            del self._conns[conn.address]
        self._by_id.pop(conn.routing_id, None)
        self._blocked.discard(conn.address)
        sock = self._router
        if sock is None:
            return
        if discard:
            # Nothing queued for a server we gave up on may be sent later.
            sock.setsockopt(zmq.LINGER, 0)
        try:
            sock.disconnect(conn.address)
        except zmq.ZMQError as exc:
            if exc.errno != errno.ENOENT:
                raise
        finally:
            if discard:
                sock.setsockopt(zmq.LINGER, round(self._settings.linger * 1000))

    def _drain_monitor(self) -> None:
        monitor = self._monitor
        while monitor is not None and readable(monitor):
            self._on_event(monitor.recv_multipart(zmq.NOBLOCK))

    def _on_event(self, frames: list[bytes]) -> None:
        event = parse_monitor_message(frames)
        conn = self._conns.get(event["endpoint"].decode("utf-8", "replace"))
        if conn is None:
            return  # a connection closed already
        kind, value = int(event["event"]), int(event["value"])
        if kind == zmq.EVENT_CONNECTED:
            conn.fd = value
        elif kind == zmq.EVENT_HANDSHAKE_SUCCEEDED:
            conn.ready = True
            if conn.backlog:
                self._flush(conn)
        elif kind == zmq.EVENT_DISCONNECTED:
            # The descriptor tells this connection from an earlier one to the same address.
            if conn.fd == value:
                self._drop(conn, was_connected=True)
        elif kind == zmq.EVENT_CONNECT_RETRIED:
            self._retried(conn)
        elif kind == zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL and conn.server_key is None:
            # Without CURVE this is a connection that closed before the
            # greeting: a server that died (or was stopped) mid-handshake.
            # Nothing reached it, so it is unreachable, not a refusal: calls
            # fail with NoRespondersError and acknowledged casts look again.
            self._drop(conn, was_connected=False)
        elif kind & security.HANDSHAKE_FAILURES:
            self._refused(conn, kind)

    def _discard_backlog(self, conn: _Connection, why: str) -> None:
        """Give up the messages waiting for ``conn``; count the casts.

        The calls among them fail with the others waiting on the connection.
        """
        unsent = 0
        backlog = list(conn.backlog)
        conn.backlog.clear()
        for message in backlog:
            self._release(message)
            if isinstance(message, SendCast) and not self._cast_elsewhere(message):
                unsent += 1
        self._blocked.discard(conn.address)
        if unsent:
            # Like the messages ZeroMQ still queued for it, discarded with the connection.
            self._stats.incr("casts_unsent", unsent)
            self.log.warning("casts not sent", reason=why, address=conn.address, count=unsent)

    def _fail_calls(self, conn: _Connection, error: MessagingError) -> None:
        for msg_id in conn.pending:
            entry = self._pending.pop(msg_id, None)
            if entry is not None:
                settle(entry.call.future, error=error)
        conn.pending.clear()

    def _refused(self, conn: _Connection, event: int) -> None:
        """``conn``'s server refused the handshake: fail its calls (`SecurityError` with CURVE)."""
        address = conn.address
        curve = conn.server_key is not None
        self._discard_backlog(conn, "server refused the handshake")
        self._close(conn, discard=True)
        self._stats.incr("auth_failures")
        if not curve:
            why = "failed the ZeroMQ handshake (not a zmqactors server?)"
        elif event == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
            why = "refused this transport's CURVE key (not on its allow-list)"
        else:
            why = "failed the CURVE handshake (wrong server key in the matchmaker?)"
        self.log.warning("server refused the handshake", address=address, reason=why)
        kind = SecurityError if curve else MessagingError
        self._fail_calls(conn, kind(f"the server at {address} {why}"))

    def _retried(self, conn: _Connection) -> None:
        """A connection attempt failed: refused, or libzmq could not open a socket for it."""
        if conn.fd is None and _out_of_descriptors():
            # No TCP socket could be opened: our limit, not the server's fault.
            self._at_descriptor_limit(conn)
        else:
            self._drop(conn, was_connected=conn.fd is not None)

    def _at_descriptor_limit(self, conn: _Connection) -> None:
        """No descriptor for ``conn``'s TCP socket: fail its calls with `ResourceLimitError`.

        The server is not marked unreachable: it may be fine.
        """
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        self._discard_backlog(conn, "open-file limit reached")
        self._close(conn, discard=True)
        self._stats.incr("resource_limit_errors")
        self.log.warning("open-file limit reached", address=conn.address, limit=soft)
        self._fail_calls(
            conn,
            ResourceLimitError(
                f"cannot connect to {conn.address}: this process has reached its open-file "
                f"limit (RLIMIT_NOFILE, {soft} descriptors); raise it (ulimit -n, LimitNOFILE=) "
                "or lower connection_idle_timeout"
            ),
        )

    def _drop(self, conn: _Connection, *, was_connected: bool) -> None:
        """Close the connection to ``conn``'s address and fail the calls waiting on it."""
        address = conn.address
        self._discard_backlog(conn, "server unreachable")
        self._close(conn, discard=True)
        self._stats.incr("unreachable_servers")
        self.log.info("server unreachable", address=address, was_connected=was_connected)
        for msg_id in conn.pending:
            entry = self._pending.pop(msg_id, None)
            if entry is None:
                continue
            call = entry.call
            error: MessagingError
            if was_connected and not entry.queued:
                error = MessagingTimeout(
                    f"connection to {call.target} at {address} lost before the reply "
                    f"to {call.method!r}"
                )
            else:
                if self._call_elsewhere(call):
                    continue
                error = NoRespondersError(f"{call.target} at {address} cannot be reached")
            settle(call.future, error=error)
        conn.pending.clear()
        try:
            self._matchmaker.tell(Unreachable(address))
        except pykka.ActorDeadError:
            return

    # -- sending ------------------------------------------------------------

    def _release(self, message: SendCall | SendCast) -> None:
        if message.credited:
            self._window.release(message.address)

    def _try_send(self, conn: _Connection, message: SendCall | SendCast) -> bool:
        """Hand ``message`` to ZeroMQ; False if its connection cannot take it now."""
        sock = self._router
        assert sock is not None  # noqa: S101 - a connection implies the socket
        try:
            send_routed(sock, conn.routing_id, message.frames)
        except zmq.Again:
            return False  # that peer's queue is at its high-water mark
        except zmq.ZMQError as exc:
            if exc.errno == _EHOSTUNREACH:
                return False  # the ROUTER has no pipe to that peer (yet)
            raise
        conn.last_used = time.monotonic()
        if isinstance(message, SendCast):
            conn.one_way = True
        return True

    def _submit(self, message: SendCall | SendCast) -> _Submitted | MessagingError:
        """Send ``message`` now, or queue it behind its connection's backlog.

        Returns the error instead when the message cannot go (client and
        server disagree on CURVE, a socket limit, a bad address): nothing is sent.
        """
        address = message.address
        conn = self._conns.get(address)
        if conn is None or conn.server_key != message.server_key:
            try:
                conn = self._connection(address, message.server_key)
            except MessagingError as exc:
                self._release(message)
                return exc
        backlog = conn.backlog
        if not backlog:
            if self._try_send(conn, message):
                self._release(message)
                return _Outcome.SENT, conn
            self._blocked.add(address)
            self._retry_interval = _RETRY_INTERVAL
            if self._retry_at is None:
                self._retry_at = time.monotonic() + _RETRY_INTERVAL
            self._stats.incr("send_queue_full")
            self.log.info(
                "send queue full: holding messages until the server reads", address=address
            )
        else:
            limit = self._window.limit
            if not message.credited and limit and len(backlog) >= limit:
                self._stats.incr("send_failures")
                return _Outcome.REFUSED, conn
        backlog.append(message)
        return _Outcome.QUEUED, conn

    def _flush(self, conn: _Connection) -> bool:
        """Send ``conn``'s backlog, in order, while its connection takes it; whether it moved."""
        backlog = conn.backlog
        left = len(backlog)
        while backlog:
            message = backlog[0]
            if isinstance(message, SendCall) and message.future.done():
                backlog.popleft()  # timed out or cancelled while it waited
                self._release(message)
                continue
            if not self._try_send(conn, message):
                return len(backlog) < left
            backlog.popleft()
            self._release(message)
            if isinstance(message, SendCall):
                pending = self._pending.get(message.msg_id)
                if pending is not None and pending.queued:
                    pending.queued = False
                    pending.sent = conn.last_used
                    if message.monitor is not None:
                        pending.alive_until = pending.sent + message.monitor
        self._blocked.discard(conn.address)
        return True

    def _retry(self, now: float) -> None:
        """Try every non-empty backlog again; keep the timer while one stays."""
        moved = False
        for address in list(self._blocked):
            conn = self._conns.get(address)
            if conn is None:
                self._blocked.discard(address)
            else:
                moved = self._flush(conn) or moved
        if not self._blocked:
            self._retry_at = None
            return
        self._retry_interval = (
            _RETRY_INTERVAL if moved else min(self._retry_interval * 2, _RETRY_MAX)
        )
        self._retry_at = now + self._retry_interval

    def _send_call(self, message: SendCall) -> None:
        if message.future.done():  # cancelled before we got to it
            self._release(message)
            return
        submitted = self._submit(message)
        if isinstance(submitted, MessagingError):
            settle(message.future, error=submitted)
            return
        outcome, conn = submitted
        if outcome is _Outcome.REFUSED:
            settle(
                message.future,
                error=MessagingError(
                    f"send queue to {message.address} is full (high-water mark reached)"
                ),
            )
            return
        pending = _Pending(message, conn, time.monotonic(), queued=outcome is _Outcome.QUEUED)
        self._pending[message.msg_id] = pending
        conn.pending.add(message.msg_id)
        heapq.heappush(self._deadlines, (pending.due(), message.msg_id))
        if len(self._deadlines) > len(self._pending) + _HEAP_SLACK:
            self._deadlines = [(d, m) for d, m in self._deadlines if m in self._pending]
            heapq.heapify(self._deadlines)

    # -- receiving ----------------------------------------------------------

    def _on_reply(self, frames: list[bytes]) -> None:
        conn = self._by_id.get(frames[0])
        try:
            reply = wire.decode(frames[1:], self._decode_limits)
        except ProtocolError as exc:
            self._stats.incr("protocol_errors")
            self.log.warning("dropped a malformed reply", error=str(exc))
            return
        if isinstance(reply, wire.Request | wire.Notification):
            self._stats.incr("protocol_errors")
            self.log.warning("dropped a request sent to a client socket")
            return
        pending = self._pending.get(reply.msg_id)
        if pending is None:
            if not isinstance(reply, wire.Heartbeat):
                self._stats.incr("late_replies")
            return
        if pending.conn is not conn:
            self._misrouted(conn, pending, reply)
            return
        if isinstance(reply, wire.Heartbeat):
            if pending.call.monitor is not None:
                pending.alive_until = time.monotonic() + pending.call.monitor
            return
        del self._pending[reply.msg_id]
        conn = pending.conn
        conn.pending.discard(reply.msg_id)
        conn.last_used = time.monotonic()
        self._settle_reply(pending, reply)

    def _settle_reply(
        self, pending: _Pending, reply: wire.Reply | wire.Ack | wire.ErrorReply
    ) -> None:
        """Hand ``reply`` to its caller, or send the call elsewhere if it did not run."""
        # Deferred: the caller wakes once this thread goes back to sleep (see defer).
        future = pending.call.future
        if isinstance(reply, wire.Reply):
            self.defer(_set_result, future, reply.result)
        elif isinstance(reply, wire.Ack):
            self.defer(_set_result, future, None)
        elif reply.kind in _NOTHING_RAN and self._call_elsewhere(pending.call):
            return
        else:
            self.defer(_set_error, future, wire.error_to_exception(reply))

    def _call_elsewhere(self, call: SendCall) -> bool:
        """Send ``call``, which did not run where it went, to another server of its topic.

        Once (the copy carries no retry), within its deadline, only for a
        call to a topic (its `SendCall.retry`); whether it was sent again.
        """
        retry = call.retry
        if retry is None or call.future.done() or time.monotonic() >= call.deadline:
            return False
        again = retry(call)
        if again is None:
            return False
        self.log.info("retried elsewhere", target=str(call.target), method=call.method)
        self._send_call(again)
        return True

    def _cast_elsewhere(self, cast: SendCast) -> bool:
        """Send ``cast``, which never left, to another server of its topic (once); whether sent."""
        retry = cast.retry
        if retry is None:
            return False
        again = retry(cast)
        if again is None:
            return False
        self._send_cast(again)
        return True

    def _misrouted(self, conn: _Connection | None, pending: _Pending, reply: wire.Message) -> None:
        """Drop ``reply``, which came on a connection its call was not sent on; count it."""
        self._stats.incr("misrouted_replies")
        # Once per connection: a hostile server must not flood the log (a
        # closed connection's leftovers are only counted).
        if conn is not None and not conn.misrouted_logged:
            conn.misrouted_logged = True
            self.log.warning(
                "dropped a reply from a server the call was not sent to",
                address=conn.address,
                call_address=pending.call.address,
                msg_id=reply.msg_id.hex(),
                kind=type(reply).__name__,
            )

    # -- timers -------------------------------------------------------------

    def next_deadline(self) -> float | None:
        """The earliest of: a pending call's deadline, an idle check, a backlog retry."""
        due = self._deadlines[0][0] if self._deadlines else None
        if self._idle and (due is None or self._idle[0][0] < due):
            due = self._idle[0][0]
        retry = self._retry_at
        if retry is not None and (due is None or retry < due):
            due = retry
        return due

    def on_deadline(self, now: float) -> None:
        """Fail calls past their deadline, retry backlogs, close idle connections."""
        if self._retry_at is not None and self._retry_at <= now:
            self._retry(now)
        if self._idle and self._idle[0][0] <= now:
            self._close_idle(now)
        heap = self._deadlines
        while heap and heap[0][0] <= now:
            _, msg_id = heapq.heappop(heap)
            pending = self._pending.get(msg_id)
            if pending is None:
                continue
            due = pending.due()
            if due > now:  # a heartbeat moved it
                heapq.heappush(heap, (due, msg_id))
                continue
            del self._pending[msg_id]
            pending.conn.pending.discard(msg_id)
            call = pending.call
            waited = now - pending.sent
            if pending.queued:
                text = (
                    f"send queue to {call.target} at {call.address} stayed full: "
                    f"{call.method!r} not sent within {waited:.3f}s"
                )
            else:
                quiet = " (no heartbeat)" if now < call.deadline else ""
                text = f"no reply to {call.method!r} from {call.target} within {waited:.3f}s{quiet}"
            settle(call.future, error=MessagingTimeout(text))

    def _close_idle(self, now: float) -> None:
        """Close the connections with nothing pending that sent nothing for the idle timeout."""
        idle = self._settings.connection_idle_timeout
        heap = self._idle
        while heap and heap[0][0] <= now:
            _, routing_id = heapq.heappop(heap)
            conn = self._by_id.get(routing_id)
            if conn is None:
                continue  # closed meanwhile
            due = now + idle if conn.pending or conn.backlog else conn.last_used + idle
            if due > now:
                heapq.heappush(heap, (due, routing_id))
                continue
            self._close(conn, discard=False)
            self._stats.incr("idle_connections_closed")
            self.log.debug("closed an idle connection", address=conn.address)

    # -- life cycle ---------------------------------------------------------

    def fail_pending(self, error: Exception) -> None:
        """Fail every pending call with ``error`` (on stop), and callers waiting for a slot."""
        self._window.close()
        pending, self._pending = self._pending, {}
        self._deadlines = []
        for conn in self._conns.values():
            # Casts stay: `close_sockets` sends them within linger, as ZeroMQ
            # does what it queued. A held call's caller is failed below.
            conn.backlog = collections.deque(m for m in conn.backlog if isinstance(m, SendCast))
            conn.pending.clear()
        self._blocked.clear()
        self._retry_at = None
        for entry in pending.values():
            settle(entry.call.future, error=error)

    def close_sockets(self) -> None:
        """Close the ROUTER (every connection) and its monitor, casts held sent first."""
        self._await_handshakes()
        linger = self._send_held_casts()
        self._conns.clear()
        self._by_id.clear()
        self._idle = []
        sock, monitor = self._router, self._monitor
        self._router = self._monitor = None
        if sock is not None:
            sock.disable_monitor()
            if linger is not None:
                lingering(linger / 1000)  # the exit's termination waits for it
            sock.close(linger=linger)
        if monitor is not None:
            monitor.close(linger=0)

    def _await_handshakes(self) -> None:
        """Let the connections still in their handshake finish it, for at most ``linger``.

        A closing ROUTER (unlike a DEALER) drops what it queued for a
        connection whose handshake has not completed, so a cast sent just
        before the transport closes (the command line's ``cast`` exits right
        after it) would be lost. A connection refused or dropped meanwhile
        is not waited for.
        """
        monitor = self._monitor
        waiting = {conn.address for conn in self._conns.values() if not conn.ready}
        if monitor is None or not waiting or not self._settings.linger:
            return
        settled = (
            zmq.EVENT_HANDSHAKE_SUCCEEDED
            | zmq.EVENT_CONNECT_RETRIED
            | zmq.EVENT_DISCONNECTED
            | security.HANDSHAKE_FAILURES
        )
        deadline = time.monotonic() + self._settings.linger
        while waiting:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not monitor.poll(math.ceil(remaining * 1000)):
                self.log.info("closing with handshakes unfinished", connections=len(waiting))
                return
            event = parse_monitor_message(monitor.recv_multipart(zmq.NOBLOCK))
            if int(event["event"]) & settled:
                waiting.discard(event["endpoint"].decode("utf-8", "replace"))

    def _send_held_casts(self) -> int | None:
        """Send the casts still held in backlogs while their servers are connected (at the stop).

        A cast that returned was accepted: one still waiting for its
        connection's handshake or for room in its queue when the transport
        closes (a process that casts and exits) goes now, like what ZeroMQ
        queued. While its connection is up the server is reading, however
        long the queues and buffers before it take to drain (a server that
        fell behind a flood reads nothing new for seconds), so the wait goes
        on, for at most ``exit_flush_timeout`` (never less than ``linger``);
        for a connection that is not up, or went down, ``linger``. What is
        still held then is counted (``casts_unsent``). Returns the ROUTER's
        linger for its close, in milliseconds: when casts went out on a
        connection that is up (ZeroMQ and TCP may still hold thousands for
        a server behind a flood), what is left of that budget, at least
        ``linger``; otherwise None (the socket's own ``linger``). Closing
        ends as soon as ZeroMQ has sent everything, so the budget costs
        time only with a connected server that does not read.
        """
        linger = self._settings.linger
        started = time.monotonic()
        last = started + max(linger, self._settings.exit_flush_timeout)
        while True:
            self._drain_monitor()  # a connection that went down is dropped
            held = [conn for conn in self._conns.values() if conn.backlog]
            for conn in held:
                self._flush(conn)
            held = [conn for conn in held if conn.backlog]
            now = time.monotonic()
            if not held:
                sent = any(conn.one_way and conn.ready for conn in self._conns.values())
                return round(max(linger, last - now) * 1000) if sent else None
            until = last if any(conn.ready for conn in held) else started + linger
            if now >= until or self._router is None:
                left = sum(len(conn.backlog) for conn in held)
                self._stats.incr("casts_unsent", left)
                self.log.info("closing with casts unsent", casts=left)
                return None
            # Room frees as the peer reads (a ROUTER always polls writable,
            # so polling it would spin): look again in a millisecond.
            time.sleep(0.001)

    def connection_count(self) -> int:
        """How many outgoing connections are open (actor thread; tests ask via `proxy`)."""
        return len(self._conns)
