"""`ZmqActorsDriver`: oslo.messaging's driver interface on zmqactors.

Registered as entry point ``zmq`` in group ``oslo.messaging.drivers``, so any
oslo.messaging application switches with ``transport_url = zmq://`` (file
matchmaker on one host) or ``zmq+redis://HOST:6379/0``. oslo loads the driver
named by the URL scheme's part before ``+`` (``TransportURL.parse`` keeps the
whole scheme, ``zmq+redis``, in ``url.transport`` and ``_get_transport`` splits
it); the driver rebuilds the full URL from the ``TransportURL`` (scheme,
hosts with the password, path, query) and gives it to `Transport.from_url`,
so every zmqactors matchmaker URL works. Options come from group ``[zmq]``
of oslo's configuration, then the URL's query.

What oslo's interface asks and how it is met:

- ``send(wait_for_reply=True)``: a call to one server of the target. While no
  server is registered (or the chosen one is stopping), the call looks again,
  backing off, until its deadline: a server that starts within the timeout
  gets it, and an absent one costs oslo's ``MessagingTimeout`` after the
  timeout, as with RabbitMQ. With ``transport_options.at_least_once`` it
  raises ``MessageUndeliverable`` at once instead (RabbitMQ's mandatory flag).
  A server that answers busy (zmqactors' ``ServerBusyError``: its queues for
  this client are full, nothing ran) is tried again the same way, backing
  off; past the deadline oslo gets ``MessagingTimeout`` saying it was busy.
  Not ``MessageDeliveryFailure``: oslo callers (nova, neutron) retry or
  report on a timeout, and a busy server that frees up within the timeout
  should serve the call, as a busy RabbitMQ consumer would.
  ``call_monitor_timeout`` fails the call early when the server sends neither
  reply nor heartbeat for that long. A remote exception is re-raised as its
  own type when its module is allowed, else as oslo's ``RemoteError``. Its
  traceback travels with it, as with every oslo.messaging driver
  (``serialize_remote_exception`` puts it in the failure payload): the
  ``send_tracebacks`` option is zmqactors' own and does not apply here.
- ``send(wait_for_reply=False)``: a cast, to one server, or to every server of
  the topic with ``fanout``. With no server registered it is dropped and
  counted (``casts_unrouted``), as a RabbitMQ exchange drops a message no queue
  is bound to (``at_least_once``: ``MessageUndeliverable``).
- ``send_notification``: one copy to one listener of every pool of the topic;
  with no listener it is dropped and counted (``notifications_unrouted``):
  zmqactors has no broker to store it. A topic found without listeners is not
  looked up again for a second.
- ``retry`` is not needed: a send is a hand-off to this process's reply-waiter
  actor, which cannot fail but for a closed transport, or a send queue to the
  server or listener that stays full for the transport's ``timeout``
  (``MessagingTimeout``; ``MessageDeliveryFailure`` for a notification).
- Exchanges isolate: the exchange (the target's, else oslo's
  ``control_exchange``) is part of every matchmaker key, fanout included.

Logging: the driver, like the rest of zmqactors, never configures logging.
An OpenStack service that wants zmqactors' structlog events in its oslo.log
files routes structlog through the standard ``logging`` module once, at
start-up, after ``oslo_log.log.setup()``::

    import structlog

    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            structlog.processors.format_exc_info,
            structlog.processors.KeyValueRenderer(key_order=["event"]),
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
    )

The events then go to the loggers named ``zmqactors.*`` with oslo.log's
handlers, levels and files.

Longer than 400 lines on purpose: it is one class implementing
oslo.messaging's driver interface (send, notifications, listen, cleanup)
and the translation of oslo's targets and URLs; split, one interface would
be spread over files.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import socket
import time
import urllib.parse
import uuid
from typing import TYPE_CHECKING, Any

import oslo_messaging
import structlog
from oslo_messaging._drivers import base

from zmqactors import wire
from zmqactors.core.waiter import Waiter
from zmqactors.errors import (
    ConfigurationError,
    MessagingError,
    MessagingTimeout,
    NoRespondersError,
    ProtocolError,
    RemoteError,
    ServerBusyError,
    TransportClosedError,
)
from zmqactors.oslo import _envelope
from zmqactors.oslo._targets import escape, notification_route_key, rpc_target
from zmqactors.oslo.listener import OsloListener
from zmqactors.topics import matchmaker_key
from zmqactors.transport._transport import Transport

if TYPE_CHECKING:
    from zmqactors.matchmaker import Route
    from zmqactors.topics import Target
    from zmqactors.transport.runtime import Runtime

__all__ = ["ZmqActorsDriver", "zmq_url"]

_log = structlog.get_logger("zmqactors.oslo")

# The exchange when neither the target nor the transport names one
# (oslo's control_exchange default).
_DEFAULT_EXCHANGE = "openstack"
# A call waiting for a server looks again after these many seconds, doubling.
_RETRY_MIN = 0.01
_RETRY_MAX = 0.5
# The reply-waiter enforces a call's deadline; the caller waits this much
# longer only in case the reply-waiter itself is gone.
_GRACE = 1.0
# How long a notification topic found without listeners is not looked up again.
_UNROUTED_TTL = 1.0


def zmq_url(url: Any) -> str:
    """The zmqactors transport URL of an oslo ``TransportURL`` (``zmq+redis://h:6379/0``).

    oslo repeats the user and password on every host of a URL with several
    (``zmq+etcd://u:p@h1:2379,u:p@h2:2379``); a zmqactors URL holds them once,
    in front. Raises `ConfigurationError` when hosts carry different ones.
    """
    netlocs = []
    credentials = {(host.username, host.password) for host in url.hosts}
    credentials.discard((None, None))
    if len(credentials) > 1:
        msg = "the hosts of the transport URL name different users or passwords: give one"
        raise ConfigurationError(msg)
    userinfo = ""
    for username, password in credentials:
        userinfo = urllib.parse.quote(username or "", safe="")
        if password is not None:
            userinfo += ":" + urllib.parse.quote(password, safe="")
        userinfo += "@"
    for host in url.hosts:
        netloc = ""
        if host.hostname:
            netloc += f"[{host.hostname}]" if ":" in host.hostname else host.hostname
        if host.port is not None:
            netloc += f":{host.port}"
        netlocs.append(netloc)
    if netlocs:
        netlocs[0] = userinfo + netlocs[0]
    path = "/" + urllib.parse.quote(url.virtual_host) if url.virtual_host else ""
    query = "&".join(
        f"{urllib.parse.quote(str(k), safe='')}={urllib.parse.quote(str(v), safe='')}"
        for k, v in sorted(url.query.items())
    )
    return f"{url.transport or 'zmq'}://{','.join(netlocs)}{path}{'?' + query if query else ''}"


def _timeout_error(message: str) -> Exception:
    error: Exception = oslo_messaging.MessagingTimeout(message)
    return error


class ZmqActorsDriver(base.BaseDriver):  # type: ignore[misc] # oslo ships no type hints
    """oslo.messaging's ``BaseDriver`` over one zmqactors `Transport`. Thread-safe.

    See the module docstring for what each method does. Raises oslo's
    ``InvalidTransportURL`` for a URL or ``[zmq]`` option zmqactors refuses.
    """

    def __init__(
        self,
        conf: Any,
        url: Any,
        default_exchange: str | None = None,
        allowed_remote_exmods: list[str] | None = None,
    ) -> None:
        super().__init__(conf, url, default_exchange, allowed_remote_exmods)
        try:
            self._transport = Transport.from_url(zmq_url(url), conf)
        except ConfigurationError as exc:
            raise oslo_messaging.InvalidTransportURL(f"{url.transport}://", str(exc)) from None
        self._exchange = default_exchange or _DEFAULT_EXCHANGE
        self._max_size = self._transport.settings.max_message_size
        self._unrouted: dict[str, float] = {}

    @property
    def transport(self) -> Transport:
        """The zmqactors transport behind this driver (its ``stats`` count what was dropped)."""
        return self._transport

    def require_features(self, requeue: bool = False) -> None:
        """Every optional feature (requeue) is supported."""

    # -- helpers --------------------------------------------------------------

    def _runtime(self) -> Runtime:
        try:
            return self._transport.runtime()
        except TransportClosedError as exc:
            raise oslo_messaging.MessageDeliveryFailure(str(exc)) from None

    def _rpc_target(self, target: Any) -> Target:
        try:
            return rpc_target(
                target.exchange or self._exchange,
                target.topic,
                target.server,
                fanout=bool(target.fanout),
            )
        except (TypeError, ValueError) as exc:
            raise oslo_messaging.InvalidTarget(str(exc), target) from None

    def _request(
        self, target: Target, kind: wire.CallKind, method: str, text: str, timeout: float | None
    ) -> tuple[bytes, tuple[bytes, bytes]]:
        msg_id = wire.new_msg_id()
        header, body = wire.request_frames(
            target,
            kind,
            method,
            args={_envelope.ARGS_KEY: text},
            context={},
            timeout=timeout,
            msg_id=msg_id,
        )
        self._check_size(body)
        return msg_id, (header, body)

    def _check_size(self, body: bytes) -> None:
        if len(body) > self._max_size:
            msg = f"message of {len(body)} bytes exceeds max_message_size ({self._max_size})"
            raise oslo_messaging.MessageDeliveryFailure(msg)

    def _undeliverable(self, error: Exception, oslo_target: Any, text: str) -> Exception:
        routing_key = oslo_target.topic
        if oslo_target.server and not oslo_target.fanout:
            routing_key = f"{oslo_target.topic}.{oslo_target.server}"
        exchange = oslo_target.exchange or self._exchange
        exc: Exception = oslo_messaging.MessageUndeliverable(error, exchange, routing_key, text)
        return exc

    # -- RPC ---------------------------------------------------------------------

    def send(  # noqa: PLR0917 - oslo's BaseDriver.send signature
        self,
        target: Any,
        ctxt: Any,
        message: Any,
        wait_for_reply: bool | None = None,
        timeout: float | None = None,
        call_monitor_timeout: float | None = None,
        retry: int | None = None,  # noqa: ARG002 - see the module docstring
        transport_options: Any = None,
    ) -> Any:
        """Call (``wait_for_reply``) or cast ``message`` to ``target``; a call returns its result.

        Raises oslo's ``MessagingTimeout``, ``RemoteError`` (or the remote
        exception itself), ``MessageUndeliverable`` (``at_least_once``),
        ``MessageDeliveryFailure`` (closed transport, message too large),
        ``InvalidTarget``, and ``TypeError``/``ValueError`` for what JSON cannot carry.
        """
        zt = self._rpc_target(target)
        at_least_once = bool(getattr(transport_options, "at_least_once", False))
        method = message.get("method") if isinstance(message, dict) else None
        method = method if isinstance(method, str) else ""
        if wait_for_reply:
            if zt.fanout:
                msg = "a call cannot be sent to a fanout target"
                raise oslo_messaging.InvalidTarget(msg, target)
            return self._call(
                target,
                zt,
                method,
                _envelope.encode_incoming(ctxt, message, call_monitor_timeout),
                timeout=timeout,
                monitor=call_monitor_timeout,
                at_least_once=at_least_once,
            )
        text = _envelope.encode_incoming(ctxt, message)
        self._cast(target, zt, method, text, at_least_once=at_least_once)
        return None

    def _call(
        self,
        oslo_target: Any,
        zt: Target,
        method: str,
        text: str,
        *,
        timeout: float | None,
        monitor: float | None,
        at_least_once: bool,
    ) -> Any:
        timeout = float(timeout) if timeout else self._transport.settings.timeout
        deadline = time.monotonic() + timeout
        delay = _RETRY_MIN
        while True:
            runtime = self._runtime()
            route = self._pick(runtime, zt, oslo_target, text, at_least_once=at_least_once)
            if route is not None:
                found, result = self._call_once(
                    runtime, route, zt, method, text, deadline=deadline, monitor=monitor
                )
                if found:
                    try:
                        return _envelope.decode_reply(result, self._allowed_remote_exmods)
                    except ProtocolError as exc:
                        raise oslo_messaging.MessagingException(str(exc)) from None
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                why = result if route is not None and result else "no server answered"
                msg = f"no reply to {method!r} from {zt} within {timeout}s ({why})"
                raise _timeout_error(msg)
            time.sleep(min(delay, remaining))
            delay = min(delay * 2, _RETRY_MAX)

    def _pick(
        self, runtime: Runtime, zt: Target, oslo_target: Any, text: str, *, at_least_once: bool
    ) -> Route | None:
        try:
            return runtime.route(zt)
        except NoRespondersError as exc:
            if at_least_once:
                raise self._undeliverable(exc, oslo_target, text) from None
            return None
        except TransportClosedError as exc:
            raise oslo_messaging.MessageDeliveryFailure(str(exc)) from None
        except MessagingError as exc:
            raise oslo_messaging.MessagingException(str(exc)) from None

    def _call_once(
        self,
        runtime: Runtime,
        route: Route,
        zt: Target,
        method: str,
        text: str,
        *,
        deadline: float,
        monitor: float | None,
    ) -> tuple[bool, Any]:
        """Send the call to ``route``: (True, reply text), or (False, None) to try elsewhere."""
        remaining = max(0.0, deadline - time.monotonic())
        msg_id, frames = self._request(zt, wire.CallKind.CALL, method, text, remaining)
        # A Waiter, not a Future: only this thread sees the outcome, and a
        # Future's condition variable costs a few µs more per call.
        future = Waiter()
        try:
            # Through the send window: a full queue to the server holds the
            # call until its deadline, as for zmqactors' own clients.
            runtime.call(
                route,
                frames,
                msg_id,
                zt,
                method,
                future,
                deadline=deadline,
                timeout=round(remaining, 3),
                monitor=monitor,
            )
        except TransportClosedError as exc:
            raise oslo_messaging.MessageDeliveryFailure(str(exc)) from None
        try:
            return True, future.result(timeout=max(0.0, deadline - time.monotonic()) + _GRACE)
        except concurrent.futures.TimeoutError:
            future.cancel()
            msg = f"no reply to {method!r} from {zt}"
            raise _timeout_error(msg) from None
        except NoRespondersError:
            # Nothing ran (the server is stopping, gone, or not this target's):
            # look the target up again and try another server.
            with contextlib.suppress(TransportClosedError):
                runtime.refresh(zt)
            return False, None
        except ServerBusyError as exc:
            # Nothing ran and the server said so at once: back off and try
            # again until the deadline, as a busy RabbitMQ consumer makes a
            # call wait; oslo callers then get the MessagingTimeout they handle.
            return False, f"the server was busy: {exc}"
        except MessagingTimeout as exc:
            raise _timeout_error(str(exc)) from None
        except RemoteError as exc:
            raise oslo_messaging.RemoteError(exc.exc_type, exc.value, exc.traceback) from None
        except TransportClosedError as exc:
            raise oslo_messaging.MessageDeliveryFailure(str(exc)) from None
        except MessagingError as exc:
            raise oslo_messaging.MessagingException(str(exc)) from None

    def _cast(
        self, oslo_target: Any, zt: Target, method: str, text: str, *, at_least_once: bool
    ) -> None:
        runtime = self._runtime()
        try:
            routes = runtime.routes(zt)
        except NoRespondersError as exc:
            if at_least_once:
                raise self._undeliverable(exc, oslo_target, text) from None
            self._transport.stats.incr("casts_unrouted")
            _log.info("cast dropped: no server is registered", target=str(zt), method=method)
            return
        except TransportClosedError as exc:
            raise oslo_messaging.MessageDeliveryFailure(str(exc)) from None
        except MessagingError as exc:
            raise oslo_messaging.MessagingException(str(exc)) from None
        _, frames = self._request(zt, wire.CallKind.CAST, method, text, None)
        timeout = self._transport.settings.timeout
        try:
            # Through the send window: waits while the queue to a server is full.
            runtime.cast(
                routes, frames, zt, method, deadline=time.monotonic() + timeout, timeout=timeout
            )
        except TransportClosedError as exc:
            raise oslo_messaging.MessageDeliveryFailure(str(exc)) from None
        except MessagingTimeout as exc:
            raise _timeout_error(str(exc)) from None

    # -- notifications -------------------------------------------------------------

    def send_notification(
        self,
        target: Any,
        ctxt: Any,
        message: Any,
        version: Any,  # noqa: ARG002 - the JSON envelope is the same for every version
        retry: int | None = None,  # noqa: ARG002 - see the module docstring
    ) -> None:
        """Send ``message`` to one listener of every pool of ``target.topic``.

        Waits while the send queue to a listener is full (at most the
        transport's ``timeout``), as casts do. Raises ``TypeError``/``ValueError``
        for what JSON cannot carry, ``MessageDeliveryFailure`` for a closed
        transport, a message too large, or a queue that stayed full.
        """
        try:
            zt, key = notification_route_key(target.exchange or self._exchange, target.topic)
        except (TypeError, ValueError) as exc:
            raise oslo_messaging.InvalidTarget(str(exc), target) from None
        stats = self._transport.stats
        now = time.monotonic()
        if self._unrouted.get(key, 0.0) > now:
            stats.incr("notifications_unrouted")
            return
        runtime = self._runtime()
        try:
            routes = runtime.lookup(key)
        except TransportClosedError as exc:
            raise oslo_messaging.MessageDeliveryFailure(str(exc)) from None
        except MessagingError as exc:
            raise oslo_messaging.MessagingException(str(exc)) from None
        if not routes:
            ttl = min(_UNROUTED_TTL, self._transport.settings.lookup_cache_ttl)
            self._unrouted[key] = now + ttl
            stats.incr("notifications_unrouted")
            return
        self._unrouted.pop(key, None)
        text = _envelope.encode_incoming(ctxt, message)
        fields = message if isinstance(message, dict) else {}
        header, body = wire.encode(
            wire.Notification(
                wire.new_msg_id(),
                zt.exchange_name,
                zt.topic,
                str(fields.get("priority") or "").lower(),
                str(fields.get("publisher_id") or ""),
                str(fields.get("event_type") or ""),
                text,
                {},
                time.time(),
            )
        )
        self._check_size(body)
        timeout = self._transport.settings.timeout
        try:
            runtime.notify(
                routes,
                (header, body),
                zt,
                "notify",
                deadline=time.monotonic() + timeout,
                timeout=timeout,
            )
        except (TransportClosedError, MessagingTimeout) as exc:
            raise oslo_messaging.MessageDeliveryFailure(str(exc)) from None

    # -- listeners -------------------------------------------------------------

    def listen(self, target: Any, batch_size: int, batch_timeout: float | None) -> OsloListener:
        """A listener for the calls and casts of ``target`` (its topic, and its server).

        Registers when oslo starts it. The server name defaults to the
        ``[zmq] host`` option, else this machine's host name.
        """
        server = target.server or self._transport.settings.host or socket.gethostname()
        try:
            zt = rpc_target(target.exchange or self._exchange, target.topic, server, fanout=False)
        except (TypeError, ValueError) as exc:
            raise oslo_messaging.InvalidTarget(str(exc), target) from None
        return OsloListener(
            self._transport,
            zt,
            [(matchmaker_key(zt), zt.server or "")],
            frozenset({(zt.exchange_name, zt.topic)}),
            rpc=True,
            batch_size=batch_size,
            batch_timeout=batch_timeout,
        )

    def listen_for_notifications(
        self,
        targets_and_priorities: Any,
        pool: str | None,
        batch_size: int,
        batch_timeout: float | None,
    ) -> OsloListener:
        """A listener for ``topic.priority`` of each (target, priority), as one member of ``pool``.

        Each notification goes to one listener of every pool; listeners
        without a pool share the default pool.
        """
        server = f"{uuid.uuid4().hex}:{escape(pool) if pool else ''}"
        registrations: list[tuple[str, str]] = []
        served: set[tuple[str, str]] = set()
        labels: list[Target] = []
        try:
            for target, priority in targets_and_priorities:
                zt, key = notification_route_key(
                    target.exchange or self._exchange, f"{target.topic}.{priority}"
                )
                registrations.append((key, server))
                served.add((zt.exchange_name, zt.topic))
                labels.append(zt)
        except (TypeError, ValueError) as exc:
            raise oslo_messaging.InvalidTarget(str(exc), None) from None
        if not labels:
            raise oslo_messaging.InvalidTarget("no (target, priority) to listen to", None)
        label = min(labels, key=str).evolve(server=server)
        return OsloListener(
            self._transport,
            label,
            sorted(registrations),
            frozenset(served),
            rpc=False,
            batch_size=batch_size,
            batch_timeout=batch_timeout,
        )

    def cleanup(self) -> None:
        """Stop every listener and actor of this driver; pending calls fail."""
        self._transport.close()
