"""The server side of the oslo.messaging driver: listeners and incoming messages.

`OsloListener` is an oslo ``Listener`` (the callback kind, not the polling
kind: one hop fewer). Behind it runs a zmqactors `Service` whose handler,
one request at a time on the transport's worker pool, decodes each request
or notification and hands it straight to oslo's callback, which queues it on
oslo's executor; the handler answers nothing itself (a call whose caller has
already given up is dropped and counted, ``expired_dropped``). oslo's
executor later calls `RpcIncoming.reply` (or ``heartbeat``) from its own
thread, which sends the reply through `Service.send_reply`.

Life cycle, as oslo's ``MessageHandlingServer`` drives it:

- ``start(callback)``: bind and register; returns once calls can reach it.
- ``stop()``: unregister; the poller refuses new requests (calls get a
  "stopping" answer and the caller tries another server until its deadline);
  a partial batch is flushed; the callback is never called again.
- oslo waits for its executor, so replies of calls in progress still go out;
- ``cleanup()``: leave the transport's socket and worker pool.

``requeue()`` puts the message back on the wire to this listener, as
RabbitMQ puts it back in its queue: it is delivered again at once, as often
as the endpoint asks. A call's reply still goes to the original caller. A
message requeued after ``stop()`` is dropped and counted (``requeue_dropped``).

Longer than 400 lines on purpose: the RPC and notification listeners and
their incoming messages share one life cycle (poll, acknowledge, requeue,
stop) that reads best in one place.
"""

from __future__ import annotations

import collections
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

import structlog
from oslo_messaging._drivers import base

from zmqactors import wire
from zmqactors.core.batch import Batcher
from zmqactors.core.dispatch import expired
from zmqactors.errors import MessagingError, MessagingTimeout, ProtocolError
from zmqactors.oslo import _envelope
from zmqactors.transport.service import Service

if TYPE_CHECKING:
    from collections.abc import Callable

    from zmqactors.topics import Target
    from zmqactors.transport._transport import Transport

__all__ = ["NotificationIncoming", "OsloListener", "RpcIncoming"]

_log = structlog.get_logger("zmqactors.oslo")

# How long cleanup() waits for the service to release its socket.
_CLEANUP_TIMEOUT = 10.0
# Requeued calls whose original caller is remembered at most (oldest forgotten first).
_MAX_REQUEUED_CALLS = 10000


class RpcIncoming(base.RpcIncomingMessage):  # type: ignore[misc] # oslo ships no type hints
    """An RPC request (call or cast) handed to oslo's server. Any thread may answer it.

    ``reply`` sends at most one reply; ``heartbeat`` keeps the caller waiting
    (``call_monitor_timeout``). Neither raises: failures are logged, as
    oslo's driver interface asks. Both do nothing for a cast.
    """

    def __init__(
        self,
        listener: OsloListener,
        ctxt: dict[str, Any],
        message: dict[str, Any],
        *,
        request: wire.Request,
        client: bytes,
        body: bytes,
        monitor: float | None,
    ) -> None:
        super().__init__(ctxt, message, request.msg_id.hex())
        self.client_timeout = monitor
        self._listener = listener
        self._wire_id = request.msg_id
        self._client = client
        self._body = body
        self._is_call = request.kind is wire.CallKind.CALL
        self._replied = False

    def acknowledge(self) -> None:
        """Nothing to do: the message was taken off the wire when it arrived."""

    def requeue(self) -> None:
        """Deliver this request to this listener again (see the module docstring)."""
        self._listener.requeue(self._body, self._wire_id, self._client if self._is_call else None)

    def reply(self, reply: Any = None, failure: Any = None) -> None:
        """Send the result (or the exception of ``failure``, an exc_info tuple) to the caller."""
        if not self._is_call or self._replied:
            return
        self._replied = True
        try:
            text = (
                _envelope.encode_failure(failure)
                if failure is not None
                else _envelope.encode_result(reply)
            )
        except (TypeError, ValueError) as exc:
            # The caller gets the error now rather than a timeout later.
            text = _failure_text(TypeError(f"cannot send the reply: {exc}"))
        body = wire.encode(wire.Reply(self._wire_id, text))[1]
        if len(body) > self._listener.max_message_size:
            self._listener.stats.incr("replies_too_large")
            error = f"the reply of {len(body)} bytes exceeds max_message_size"
            text = _failure_text(ValueError(error))
            body = wire.encode(wire.Reply(self._wire_id, text))[1]
        self._listener.send_reply(self._client, body)

    def heartbeat(self) -> None:
        """Tell the caller the call is still running (oslo's server calls this periodically)."""
        if self._is_call and not self._replied:
            self._listener.send_reply(self._client, wire.encode(wire.Heartbeat(self._wire_id))[1])


class NotificationIncoming(base.IncomingMessage):  # type: ignore[misc] # no type hints in oslo
    """A notification handed to oslo's notification server."""

    def __init__(
        self,
        listener: OsloListener,
        ctxt: dict[str, Any],
        message: dict[str, Any],
        notification: wire.Notification,
        body: bytes,
    ) -> None:
        super().__init__(ctxt, message, notification.msg_id.hex())
        self._listener = listener
        self._wire_id = notification.msg_id
        self._body = body

    def acknowledge(self) -> None:
        """Nothing to do: the message was taken off the wire when it arrived."""

    def requeue(self) -> None:
        """Deliver this notification to this listener again."""
        self._listener.requeue(self._body, self._wire_id, None)


def _failure_text(error: Exception) -> str:
    """The reply text of a call failed with ``error``, traceback included."""
    try:
        raise error  # noqa: TRY301 - raised to give serialize_remote_exception an exc_info
    except Exception:  # noqa: BLE001 - it is the exception just raised
        return _envelope.encode_failure(sys.exc_info())


class _ServedTargets:
    """The (exchange, topic) pairs (and server) a listener serves; it refuses the rest."""

    def __init__(self, pairs: frozenset[tuple[str, str]], server: str | None) -> None:
        self.pairs = pairs
        self.server = server

    def rpc(self, request: wire.Request) -> bool:
        return (request.exchange, request.topic) in self.pairs and (
            request.server is None or request.server == self.server
        )

    def notification(self, notification: wire.Notification) -> bool:
        return (notification.exchange, notification.topic) in self.pairs


class _Handler:
    """What the service's worker actor runs: decode, check, hand over to oslo.

    `handle` and `on_deadline` run in the worker actor's thread; `take_batch`
    in the thread stopping the listener (the batch is under a lock).
    """

    def __init__(self, listener: OsloListener, served: _ServedTargets, *, rpc: bool) -> None:
        self._listener = listener
        self._served = served
        self._rpc = rpc
        self._batch_size = max(1, listener.batch_size or 1)
        self._batch: Batcher[NotificationIncoming] = Batcher(
            self._batch_size, listener.batch_timeout or None
        )
        self._log = _log.bind(actor="worker")

    def handle(
        self, body: bytes, client: bytes = b"", arrival: float | None = None
    ) -> bytes | None:
        """Hand the request or notification in ``body`` to oslo; maybe answer a refusal.

        A call whose caller has given up (``timeout`` passed since
        ``arrival``) is dropped and counted (``expired_dropped``), not handed over.
        """
        listener = self._listener
        try:
            message = wire.decode_body(body, listener.decode_limits)
        except ProtocolError as exc:
            return self._drop(None, "protocol_errors", f"malformed message: {exc}")
        if isinstance(message, wire.Request) and self._rpc:
            if arrival is not None and expired(message, arrival, listener.stats):
                return None
            return self._request(message, body, client)
        if isinstance(message, wire.Notification) and not self._rpc:
            self._notification(message, body)
            return None
        return self._drop(None, "misrouted", f"unexpected {type(message).__name__}")

    def _request(self, request: wire.Request, body: bytes, client: bytes) -> bytes | None:
        listener = self._listener
        if not self._served.rpc(request):
            return self._drop(
                request,
                "misrouted",
                f"not served here: {request.exchange}/{request.topic} server={request.server}",
                wire.ErrorKind.NOT_SERVED,
            )
        try:
            ctxt, message, monitor = _envelope.decode_incoming(request.args.get(_envelope.ARGS_KEY))
        except ProtocolError as exc:
            return self._drop(request, "protocol_errors", str(exc), wire.ErrorKind.BAD_REQUEST)
        client = listener.original_client(request.msg_id, client)
        incoming = RpcIncoming(
            listener, ctxt, message, request=request, client=client, body=body, monitor=monitor
        )
        if listener.deliver([incoming]):
            return None
        return self._drop(
            request, "rejected_stopping", "the listener is stopping", wire.ErrorKind.STOPPING
        )

    def _notification(self, notification: wire.Notification, body: bytes) -> None:
        listener = self._listener
        if not self._served.notification(notification):
            self._drop(None, "misrouted", f"not served here: {notification.topic}")
            return
        try:
            ctxt, message, _ = _envelope.decode_incoming(notification.payload)
        except ProtocolError as exc:
            self._drop(None, "protocol_errors", str(exc))
            return
        incoming = NotificationIncoming(listener, ctxt, message, notification, body)
        if self._batch_size == 1:
            if not listener.deliver([incoming]):
                listener.stats.incr("rejected_stopping")
            return
        full = self._batch.add(incoming, time.monotonic())
        if full:
            self._deliver_batch(full)

    def _drop(
        self,
        request: wire.Request | None,
        counter: str,
        reason: str,
        kind: wire.ErrorKind | None = None,
    ) -> bytes | None:
        self._listener.stats.incr(counter)
        self._log.info("message refused", reason=reason, counter=counter)
        if request is None or kind is None or request.kind is not wire.CallKind.CALL:
            return None
        return wire.encode(
            wire.ErrorReply(request.msg_id, kind, "zmqactors.errors.NoRespondersError", reason)
        )[1]

    def take_batch(self) -> list[NotificationIncoming]:
        """Remove and return the notifications waiting for a batch. Any thread."""
        return self._batch.take()

    def _deliver_batch(self, batch: list[NotificationIncoming]) -> None:
        if batch and not self._listener.deliver(batch):
            self._listener.stats.incr("rejected_stopping", len(batch))

    def next_deadline(self) -> float | None:
        """When a partial batch is due (its ``batch_timeout`` after its first notification)."""
        return self._batch.due

    def on_deadline(self, now: float) -> None:
        """Deliver the partial batch once it is due."""
        self._deliver_batch(self._batch.take_due(now))


class _Service(Service):
    """The zmqactors service behind one `OsloListener`."""

    # A partial batch is flushed by a timer (`_Handler.next_deadline`).
    _timers = True

    def __init__(
        self,
        transport: Transport,
        label: Target,
        registrations: list[tuple[str, str]],
        make_handler: Callable[[], _Handler],
    ) -> None:
        # One request at a time: it only decodes and queues on oslo's
        # executor, and one at a time keeps batches in arrival order.
        super().__init__(transport, label, 1)
        self.label = label
        self._keys = registrations
        self._make_handler = make_handler

    def _handler(self) -> _Handler:
        return self._make_handler()

    def _registrations(self) -> list[tuple[str, str]]:
        return list(self._keys)


class OsloListener(base.Listener):  # type: ignore[misc] # oslo ships no type hints
    """An oslo ``Listener`` backed by a zmqactors service. Thread-safe.

    Built by the driver's ``listen`` (RPC) or ``listen_for_notifications``;
    ``rpc`` says which. ``registrations`` are the matchmaker (key, server name)
    pairs, ``served`` the (exchange, topic) pairs it accepts messages for.
    """

    def __init__(
        self,
        transport: Transport,
        label: Target,
        registrations: list[tuple[str, str]],
        served: frozenset[tuple[str, str]],
        *,
        rpc: bool,
        batch_size: int = 1,
        batch_timeout: float | None = None,
    ) -> None:
        super().__init__(batch_size, batch_timeout)
        self.transport = transport
        self.stats = transport.stats
        self.max_message_size = transport.settings.max_message_size
        self.decode_limits = transport.settings.decode_limits
        self._lock = threading.Lock()
        self._requeued: collections.OrderedDict[bytes, bytes] = collections.OrderedDict()
        self._handler_obj = _Handler(
            self, _ServedTargets(served, label.server if rpc else None), rpc=rpc
        )
        self._service = _Service(transport, label, registrations, lambda: self._handler_obj)
        self._log = _log.bind(target=str(label))

    def __repr__(self) -> str:
        return f"<OsloListener {self._service.label} {self._service.state}>"

    @property
    def address(self) -> str:
        """The address the listener's socket is bound to (empty until started)."""
        return self._service.address

    # -- oslo's Listener interface ----------------------------------------

    def start(self, on_incoming_callback: Callable[[list[Any]], None]) -> None:
        """Bind, register and start handing messages to ``on_incoming_callback``.

        Returns once messages can reach the listener. Raises oslo's
        ``MessagingException`` (through the driver) if it cannot bind or register.
        """
        with self._lock:
            super().start(on_incoming_callback)
        self._service.start()

    def stop(self) -> None:
        """Unregister, take no new messages, flush a partial batch; then no more callbacks."""
        self._service.stop()
        batch = self._handler_obj.take_batch()
        if batch:
            self.deliver(batch)
        with self._lock:
            super().stop()

    def cleanup(self) -> None:
        """Leave the transport's socket and worker pool (after ``stop``, or stopping first)."""
        self.stop()
        try:
            self._service.wait(timeout=_CLEANUP_TIMEOUT)
        except MessagingTimeout as exc:
            self._log.warning("listener cleanup timed out", error=str(exc))

    # -- for the handler and the incoming messages --------------------------

    def deliver(self, incoming: list[Any]) -> bool:
        """Hand ``incoming`` to oslo's callback; False once stopped (or if oslo refused)."""
        with self._lock:
            callback = self.on_incoming_callback
            if callback is None:
                return False
            try:
                callback(incoming)
            except Exception:  # noqa: BLE001 - e.g. oslo's executor already shut down
                self._log.warning("oslo refused incoming messages", exc_info=True)
                return False
        return True

    def send_reply(self, client: bytes, body: bytes) -> None:
        """Send a reply or heartbeat body to ``client``; logs instead of raising."""
        try:
            self._service.send_reply(client, body)
        except MessagingError as exc:
            self._log.warning("reply not sent", error=str(exc))

    def requeue(self, body: bytes, msg_id: bytes, client: bytes | None) -> None:
        """Send ``body`` to this listener again; remember ``client`` for a call's reply."""
        address = self._service.address
        if self._service.state != "running" or not address:
            self.stats.incr("requeue_dropped")
            self._log.info("requeued message dropped: the listener is stopped")
            return
        if client is not None:
            with self._lock:
                self._requeued[msg_id] = client
                while len(self._requeued) > _MAX_REQUEUED_CALLS:
                    self._requeued.popitem(last=False)
        try:
            self.transport.runtime().post(
                address,
                self._service.destination,
                (wire.HEADER, body),
                self._service.label,
                "requeue",
                self._service.server_key,
            )
        except MessagingError as exc:
            self.stats.incr("requeue_dropped")
            self._log.info("requeued message dropped", error=repr(exc))
            return
        self.stats.incr("requeued")

    def original_client(self, msg_id: bytes, client: bytes) -> bytes:
        """The caller a requeued call must answer (``client`` for anything not requeued)."""
        if not self._requeued:
            return client
        with self._lock:
            return self._requeued.pop(msg_id, client)
