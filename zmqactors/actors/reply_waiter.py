"""The reply-waiter: a client's outbound sockets, its pending calls and their deadlines.

Runs in its own thread; owns one DEALER per server address it has sent to.
Caller threads hand it `SendCall`/`SendCast` through its inbox; it sends the
frames, keeps each call's future by message id, and resolves that future
itself when the reply arrives or the deadline passes, so the caller wakes with
no further hop. A reply for an id it no longer holds (the call timed out) is
dropped and counted as ``late_replies``.

A reply is bound to its call: it is accepted only from the DEALER the call
went out on, that is from the one connection to the address (and, with
CURVE, the server key) the caller picked. A reply or heartbeat carrying a
pending call's id that arrives on any other DEALER is dropped and counted
(``misrouted_replies``), and the call still waits for its own server; ids
are random (`wire.new_msg_id`), so another server cannot guess them either.

Longer than 400 lines on purpose: sending, the backlog, the connection
monitors and the deadlines all read and change one table of pending calls
and one DEALER per address, in this actor's thread; the pure parts it uses
are in `zmqactors.core` already (`window`, `waiter`), and splitting the rest
would spread that one table across files.

A DEALER to a server whose route carries a CURVE key is a CURVE client with
this transport's key pair (`zmqactors.net.security`). Failing closed, a
transport with a key pair sends nothing to a server without a key, one
without sends nothing to a server that has one, and a server that refuses
the handshake fails the calls waiting on it with `SecurityError`.

Nothing is dropped for a full send queue. A message that meets a DEALER at
its high-water mark (the server reads slower than callers send) waits in a
backlog per address, sent in order as soon as the socket is writable
(POLLOUT); a call still waiting there at its deadline fails with
`MessagingTimeout`. The backlog is bounded by the `SendWindow`: callers take
a slot per message before they tell this actor and block, in their own
thread, while the address has ``high_water_mark`` messages in the inbox and
the backlog; this actor gives the slot back once ZeroMQ has the message.
Messages sent without a slot (notifications, the oslo.messaging driver) are
refused and counted (``send_failures``) when the backlog is that full.

It also watches each DEALER's connection (a ZeroMQ socket monitor). When a
server cannot be reached (connection refused) or its connection drops, the
DEALER is closed, discarding what it still queued, and the calls waiting on
that address fail at once: `NoRespondersError` if the request never left
(nothing ran), `MessagingTimeout` if the connection was up (the outcome is
unknown, as with a timeout). The matchmaker actor is told to route around the
address for a while.
"""

from __future__ import annotations

import collections
import contextlib
import enum
import functools
import heapq
import time
from typing import TYPE_CHECKING, Any, assert_never

import pykka
import zmq
from zmq.utils.monitor import parse_monitor_message

from zmqactors import wire
from zmqactors.actors.base import SocketActor
from zmqactors.actors.frames import send_frames
from zmqactors.actors.messages import ReplyWaiterMessage, SendCall, SendCast, Unreachable
from zmqactors.core.waiter import settle
from zmqactors.core.window import SendWindow
from zmqactors.errors import (
    MessagingError,
    MessagingTimeout,
    NoRespondersError,
    ProtocolError,
    SecurityError,
)
from zmqactors.net import security
from zmqactors.net.context import get_context
from zmqactors.net.sockets import network_socket

if TYPE_CHECKING:
    from concurrent.futures import Future

    from zmqactors.core.stats import Stats
    from zmqactors.core.waiter import Waiter
    from zmqactors.net.keys import KeyPair
    from zmqactors.options import Settings

__all__ = ["ReplyWaiter"]

# Rebuild the deadline heap when it holds this many more entries than there
# are pending calls (answered calls leave their entry behind until then).
_HEAP_SLACK = 4096
_MONITORED = (
    zmq.EVENT_CONNECTED
    | zmq.EVENT_DISCONNECTED
    | zmq.EVENT_CONNECT_RETRIED
    | security.HANDSHAKE_FAILURES
)


def _set_result(future: Future[Any] | Waiter, result: Any) -> None:
    settle(future, result=result)


def _set_error(future: Future[Any] | Waiter, error: BaseException) -> None:
    settle(future, error=error)


class _Outcome(enum.Enum):
    SENT = enum.auto()  # ZeroMQ took it
    QUEUED = enum.auto()  # in the address's backlog, sent when the socket is writable
    REFUSED = enum.auto()  # an uncredited message and the backlog is full


class _Pending:
    """A call sent (or queued) and not yet answered: its message and what changes."""

    __slots__ = ("alive_until", "call", "dealer", "queued", "sent")

    def __init__(
        self, call: SendCall, dealer: zmq.Socket[bytes] | None, sent: float, *, queued: bool
    ) -> None:
        self.call = call
        # The only socket its reply may come from.
        self.dealer = dealer
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
        self._window = SendWindow(settings.high_water_mark) if window is None else window
        self._backlogs: dict[str, collections.deque[SendCall | SendCast]] = {}
        self._stats = stats
        self._matchmaker = matchmaker
        self._dealers: dict[str, zmq.Socket[bytes]] = {}
        # The CURVE key each DEALER was made for (None: plain).
        self._server_keys: dict[str, str | None] = {}
        self._keys: KeyPair | None = None
        self._monitors: dict[str, zmq.Socket[bytes]] = {}
        self._connected: set[str] = set()
        # Addresses whose misrouted replies were logged (once per connection).
        self._misrouted_logged: set[str] = set()
        self._pending: dict[bytes, _Pending] = {}
        self._deadlines: list[tuple[float, bytes]] = []

    def on_receive(self, message: ReplyWaiterMessage) -> None:
        """Handle one inbox message (actor thread)."""
        match message:
            case SendCall():
                self._send_call(message)
            case SendCast():
                outcome = self._submit(message)
                if isinstance(outcome, SecurityError):
                    self._stats.incr("security_refusals")
                    self.log.warning("cast not sent", address=message.address, error=str(outcome))
                elif outcome is _Outcome.REFUSED:
                    self.log.warning("cast dropped: send queue full", address=message.address)
            case _:
                assert_never(message)

    def _client_keys(self, address: str, server_key: str | None) -> KeyPair | None:
        """The key pair for a DEALER to ``address``, None for plain; `SecurityError` if refused."""
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

    def _dealer(self, address: str, server_key: str | None) -> zmq.Socket[bytes]:
        sock = self._dealers.get(address)
        if sock is not None and self._server_keys.get(address) != server_key:
            # The server at this address restarted with another key.
            self._close_peer(address)
            sock = None
        if sock is None:
            keys = self._client_keys(address, server_key)
            sock = network_socket(get_context(), zmq.DEALER, self._settings)
            if keys is not None and server_key is not None:
                try:
                    security.configure_client(sock, keys, server_key)
                except SecurityError:
                    sock.close(linger=0)
                    raise
            monitor = sock.get_monitor_socket(_MONITORED)
            sock.connect(address)
            self._dealers[address] = sock
            self._server_keys[address] = server_key
            self._monitors[address] = monitor
            self.watch(sock, functools.partial(self._on_reply, address, sock))
            self.watch(monitor, lambda frames: self._on_event(address, frames))
        return sock

    def _on_event(self, address: str, frames: list[bytes]) -> None:
        event = parse_monitor_message(frames)["event"]
        if event == zmq.EVENT_CONNECTED:
            self._connected.add(address)
        elif event in (zmq.EVENT_DISCONNECTED, zmq.EVENT_CONNECT_RETRIED):
            self._drop_peer(address, was_connected=address in self._connected)
        elif (
            event == zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL and self._server_keys.get(address) is None
        ):
            # Without CURVE this is a connection that closed before the
            # greeting: a server that died (or was stopped) mid-handshake.
            # Nothing reached it, so it is unreachable, not a refusal: calls
            # fail with NoRespondersError and acknowledged casts look again.
            self._drop_peer(address, was_connected=False)
        elif event & security.HANDSHAKE_FAILURES:
            self._refused(address, event)

    def _discard_backlog(self, address: str, why: str) -> None:
        """Give up the messages waiting for ``address``'s send queue; count the casts.

        The calls among them fail with the others waiting on the address.
        """
        backlog = self._backlogs.pop(address, None) or ()
        unsent = 0
        for message in backlog:
            self._release(message)
            unsent += isinstance(message, SendCast)
        if unsent:
            # Like the messages ZeroMQ still queued for it, discarded with the DEALER.
            self._stats.incr("casts_unsent", unsent)
            self.log.warning("casts not sent", reason=why, address=address, count=unsent)

    def _refused(self, address: str, event: int) -> None:
        """The handshake with ``address`` failed: fail its calls (`SecurityError` with CURVE)."""
        curve = self._server_keys.get(address) is not None
        self._discard_backlog(address, "server refused the handshake")
        self._close_peer(address)
        self._stats.incr("auth_failures")
        if not curve:
            why = "failed the ZeroMQ handshake (not a zmqactors server?)"
        elif event == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
            why = "refused this transport's CURVE key (not on its allow-list)"
        else:
            why = "failed the CURVE handshake (wrong server key in the matchmaker?)"
        self.log.warning("server refused the handshake", address=address, reason=why)
        kind = SecurityError if curve else MessagingError
        for msg_id, entry in list(self._pending.items()):
            if entry.call.address == address:
                del self._pending[msg_id]
                settle(entry.call.future, error=kind(f"the server at {address} {why}"))

    def _drop_peer(self, address: str, *, was_connected: bool) -> None:
        """Close the DEALER to ``address`` and fail the calls waiting on it."""
        self._discard_backlog(address, "server unreachable")
        self._close_peer(address)
        self._stats.incr("unreachable_servers")
        self.log.info("server unreachable", address=address, was_connected=was_connected)
        for msg_id, entry in list(self._pending.items()):
            call = entry.call
            if call.address != address:
                continue
            del self._pending[msg_id]
            error: MessagingError
            if was_connected and not entry.queued:
                error = MessagingTimeout(
                    f"connection to {call.target} at {address} lost before the reply "
                    f"to {call.method!r}"
                )
            else:
                error = NoRespondersError(f"{call.target} at {address} cannot be reached")
            settle(call.future, error=error)
        with contextlib.suppress(pykka.ActorDeadError):
            self._matchmaker.tell(Unreachable(address))

    def _close_peer(self, address: str) -> None:
        self._connected.discard(address)
        self._misrouted_logged.discard(address)
        self._server_keys.pop(address, None)
        sock = self._dealers.pop(address, None)
        monitor = self._monitors.pop(address, None)
        if sock is not None:
            self.unwatch(sock)
            sock.disable_monitor()
            # Nothing queued for a server we gave up on may be sent later.
            sock.close(linger=0)
        if monitor is not None:
            self.unwatch(monitor)
            monitor.close(linger=0)

    def _release(self, message: SendCall | SendCast) -> None:
        if message.credited:
            self._window.release(message.address)

    def _submit(self, message: SendCall | SendCast) -> _Outcome | SecurityError:
        """Send ``message`` now, or queue it behind a full send queue.

        Returns the `SecurityError` instead when client and server disagree on
        CURVE (nothing is sent).
        """
        address = message.address
        backlog = self._backlogs.get(address)
        if backlog is None:
            try:
                sock = self._dealer(address, message.server_key)
            except SecurityError as exc:
                self._release(message)
                return exc
            try:
                send_frames(sock, message.frames, block=False)
            except zmq.Again:
                pass
            else:
                self._release(message)
                return _Outcome.SENT
            backlog = self._backlogs[address] = collections.deque()
            self.watch_writable(sock, lambda: self._flush(address))
            self._stats.incr("send_queue_full")
            self.log.info(
                "send queue full: holding messages until the server reads", address=address
            )
        limit = self._window.limit
        if not message.credited and limit and len(backlog) >= limit:
            self._stats.incr("send_failures")
            return _Outcome.REFUSED
        backlog.append(message)
        return _Outcome.QUEUED

    def _flush(self, address: str) -> None:
        """The DEALER to ``address`` is writable: send its backlog, in order, while it takes it."""
        backlog = self._backlogs.get(address)
        sock = self._dealers.get(address)
        if backlog is None or sock is None:
            return
        while backlog:
            message = backlog[0]
            if isinstance(message, SendCall) and message.future.done():
                backlog.popleft()  # timed out or cancelled while it waited
                self._release(message)
                continue
            try:
                send_frames(sock, message.frames, block=False)
            except zmq.Again:
                return
            backlog.popleft()
            self._release(message)
            if isinstance(message, SendCall):
                pending = self._pending.get(message.msg_id)
                if pending is not None and pending.queued:
                    pending.queued = False
                    pending.sent = time.monotonic()
                    if message.monitor is not None:
                        pending.alive_until = pending.sent + message.monitor
        del self._backlogs[address]
        self.unwatch_writable(sock)

    def _send_call(self, message: SendCall) -> None:
        if message.future.done():  # cancelled before we got to it
            self._release(message)
            return
        outcome = self._submit(message)
        if isinstance(outcome, SecurityError):
            settle(message.future, error=outcome)
            return
        if outcome is _Outcome.REFUSED:
            settle(
                message.future,
                error=MessagingError(
                    f"send queue to {message.address} is full (high-water mark reached)"
                ),
            )
            return
        now = time.monotonic()
        dealer = self._dealers.get(message.address)
        pending = _Pending(message, dealer, now, queued=outcome is _Outcome.QUEUED)
        self._pending[message.msg_id] = pending
        heapq.heappush(self._deadlines, (pending.due(), message.msg_id))
        if len(self._deadlines) > len(self._pending) + _HEAP_SLACK:
            self._deadlines = [(d, m) for d, m in self._deadlines if m in self._pending]
            heapq.heapify(self._deadlines)

    def _on_reply(self, address: str, sock: zmq.Socket[bytes], frames: list[bytes]) -> None:
        try:
            reply = wire.decode(frames, self._settings.max_message_size)
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
        if pending.dealer is not sock:
            self._misrouted(address, pending, reply)
            return
        if isinstance(reply, wire.Heartbeat):
            if pending.call.monitor is not None:
                pending.alive_until = time.monotonic() + pending.call.monitor
            return
        del self._pending[reply.msg_id]
        # Deferred: the caller wakes once this thread goes back to sleep (see defer).
        future = pending.call.future
        if isinstance(reply, wire.Reply):
            self.defer(_set_result, future, reply.result)
        elif isinstance(reply, wire.Ack):
            self.defer(_set_result, future, None)
        else:
            self.defer(_set_error, future, wire.error_to_exception(reply))

    def _misrouted(self, address: str, pending: _Pending, reply: wire.Message) -> None:
        """Drop ``reply``, which came from ``address`` for a call sent elsewhere; count it."""
        self._stats.incr("misrouted_replies")
        if address not in self._misrouted_logged:
            # Once per connection: a hostile server must not flood the log.
            self._misrouted_logged.add(address)
            self.log.warning(
                "dropped a reply from a server the call was not sent to",
                address=address,
                call_address=pending.call.address,
                msg_id=reply.msg_id.hex(),
                kind=type(reply).__name__,
            )

    def next_deadline(self) -> float | None:
        """The earliest deadline of a pending call."""
        return self._deadlines[0][0] if self._deadlines else None

    def on_deadline(self, now: float) -> None:
        """Fail every call whose deadline has passed with `MessagingTimeout`."""
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

    def fail_pending(self, error: Exception) -> None:
        """Fail every pending call with ``error`` (on stop), and callers waiting for a slot."""
        self._window.close()
        pending, self._pending = self._pending, {}
        self._deadlines = []
        self._backlogs.clear()
        for entry in pending.values():
            settle(entry.call.future, error=error)

    def close_sockets(self) -> None:
        """Close every DEALER."""
        for address in list(self._dealers):
            sock = self._dealers[address]
            sock.disable_monitor()
            sock.close()
            self._dealers.pop(address)
            self._server_keys.pop(address, None)
            monitor = self._monitors.pop(address, None)
            if monitor is not None:
                monitor.close(linger=0)
