"""`Notifier` and `NotificationListener`: events published to pools of listeners.

Semantics as in oslo.messaging: a notification goes to exactly one listener
of every pool listening on its topic; listeners created without a pool form
the default pool; listeners of one pool share the load (taken in turn).

Listeners register in the matchmaker under the topic's notification key with
their pool in the route's server name (``<listener id>:<pool>``), and the
notifier sends one copy per pool, as a cast, over the same reply-waiter
sockets RPC uses. With no listener at all a notification is dropped and
counted (``notifications_unrouted``): publishing never fails because nobody
listens.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from typing import TYPE_CHECKING, Any

from zmqactors import wire
from zmqactors.core.notify_dispatch import PRIORITIES, NotificationDispatcher
from zmqactors.topics import Target, notification_key, validate_name
from zmqactors.transport.service import Service, check_endpoints

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from zmqactors.transport._transport import Transport

__all__ = ["NotificationListener", "Notifier"]

_MAX_EVENT_TYPE = 255


class Notifier:
    """Publishes notifications on ``topics`` as ``publisher_id``. Thread-safe.

    ``notifier.info(event_type, payload, context=None)``, and likewise
    ``audit``, ``debug``, ``warn`` (``warning``), ``error``, ``critical``,
    ``sample``; ``context`` is the request context, which endpoints read with
    `request_context()`. Raises ``ValueError`` for a bad publisher id, topic or event
    type, ``TypeError`` for a payload that cannot be sent.
    """

    def __init__(
        self,
        transport: Transport,
        publisher_id: str,
        topics: Sequence[str] = ("notifications",),
        *,
        exchange: str | None = None,
    ) -> None:
        validate_name("publisher_id", publisher_id)
        if isinstance(topics, str) or not topics:
            msg = f"topics must be a non-empty sequence of topic names, got {topics!r}"
            raise ValueError(msg)
        self.transport = transport
        self.publisher_id = publisher_id
        self.targets = tuple(Target(topic, exchange=exchange) for topic in topics)
        self._keys = tuple(notification_key(t) for t in self.targets)

    def __repr__(self) -> str:
        return f"<Notifier {self.publisher_id} on {', '.join(str(t) for t in self.targets)}>"

    def prepare(self, publisher_id: str) -> Notifier:
        """A notifier like this one with another ``publisher_id``."""
        return Notifier(
            self.transport,
            publisher_id,
            [t.topic for t in self.targets],
            exchange=self.targets[0].exchange,
        )

    def audit(self, event_type: str, payload: Any, context: Mapping[str, Any] | None = None) -> int:
        """Publish at priority ``audit``; return how many listeners it went to."""
        return self.notify("audit", event_type, payload, context)

    def debug(self, event_type: str, payload: Any, context: Mapping[str, Any] | None = None) -> int:
        """Publish at priority ``debug``."""
        return self.notify("debug", event_type, payload, context)

    def info(self, event_type: str, payload: Any, context: Mapping[str, Any] | None = None) -> int:
        """Publish at priority ``info``."""
        return self.notify("info", event_type, payload, context)

    def warn(self, event_type: str, payload: Any, context: Mapping[str, Any] | None = None) -> int:
        """Publish at priority ``warn``."""
        return self.notify("warn", event_type, payload, context)

    warning = warn

    def error(self, event_type: str, payload: Any, context: Mapping[str, Any] | None = None) -> int:
        """Publish at priority ``error``."""
        return self.notify("error", event_type, payload, context)

    def critical(
        self,
        event_type: str,
        payload: Any,
        context: Mapping[str, Any] | None = None,
    ) -> int:
        """Publish at priority ``critical``."""
        return self.notify("critical", event_type, payload, context)

    def sample(
        self, event_type: str, payload: Any, context: Mapping[str, Any] | None = None
    ) -> int:
        """Publish at priority ``sample``."""
        return self.notify("sample", event_type, payload, context)

    def notify(
        self,
        priority: str,
        event_type: str,
        payload: Any,
        context: Mapping[str, Any] | None = None,
    ) -> int:
        """Publish at ``priority``; return how many listeners (one per pool) it was sent to.

        Blocks while the send queue to a listener is full, for at most the
        transport's ``timeout`` option, then raises `MessagingTimeout` naming
        that queue: a notifier outrunning its listeners is slowed down, and
        nothing it was told to send is dropped.
        """
        if priority not in PRIORITIES:
            msg = f"unknown priority {priority!r}; use one of {', '.join(PRIORITIES)}"
            raise ValueError(msg)
        if not isinstance(event_type, str) or not 0 < len(event_type) <= _MAX_EVENT_TYPE:
            msg = f"invalid event_type {event_type!r}: a string of 1-255 characters is required"
            raise ValueError(msg)
        runtime = self.transport.runtime()
        sent = 0
        for target, key in zip(self.targets, self._keys, strict=True):
            routes = runtime.lookup(key)
            if not routes:
                self.transport.stats.incr("notifications_unrouted")
                continue
            tracing = self.transport.tracing
            with (
                contextlib.nullcontext(None)
                if tracing is None
                else tracing.sent("notify", target, event_type)
            ) as trace:
                header, body = wire.encode(
                    wire.Notification(
                        wire.new_msg_id(),
                        target.exchange_name,
                        target.topic,
                        priority,
                        self.publisher_id,
                        event_type,
                        payload,
                        dict(context or {}),
                        time.time(),
                        trace,
                    )
                )
                timeout = self.transport.settings.timeout
                sent += runtime.notify(
                    routes,
                    (header, body),
                    target,
                    priority,
                    deadline=time.monotonic() + timeout,
                    timeout=timeout,
                )
        return sent


class NotificationListener(Service):
    """Delivers the notifications of ``targets`` to ``endpoints``, as one member of ``pool``.

    Endpoint methods are named after priorities and get ``(publisher_id,
    event_type, payload, metadata)``; with ``batch_size > 1`` they get a list
    of at most ``batch_size`` dicts, flushed at the latest ``batch_timeout``
    seconds after the first one arrived. An endpoint's optional
    ``filter_rule`` (`NotificationFilter`) selects by publisher and event type.
    A batch listener runs one notification (or flush) at a time, so batches
    keep arrival order.
    Life cycle as for `RPCServer` (`start`, `stop`, `wait`, context manager).
    """

    def __init__(
        self,
        transport: Transport,
        targets: Sequence[Target],
        endpoints: Sequence[object],
        *,
        pool: str | None = None,
        batch_size: int = 1,
        batch_timeout: float | None = None,
        executor_size: int | None = None,
    ) -> None:
        if isinstance(targets, Target) or not targets:
            msg = "targets must be a non-empty sequence of Targets"
            raise ValueError(msg)
        for target in targets:
            if not isinstance(target, Target):
                msg = f"targets must be zmqactors Targets, got {type(target).__name__}"
                raise TypeError(msg)
        if pool is not None:
            validate_name("pool", pool)
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            msg = f"invalid batch_size {batch_size!r}: a positive integer is required"
            raise ValueError(msg)
        if batch_timeout is not None and not (
            isinstance(batch_timeout, int | float) and 0 < batch_timeout < float("inf")
        ):
            msg = f"invalid batch_timeout {batch_timeout!r}: a positive number of seconds or None"
            raise ValueError(msg)
        self.targets = tuple(targets)
        self.endpoints = check_endpoints(endpoints, "NotificationListener")
        self.pool = pool
        self.batch_size = batch_size
        self.batch_timeout = batch_timeout
        self._listener_id = uuid.uuid4().hex
        size = 1 if batch_size > 1 else executor_size or transport.settings.executor_size
        label = self.targets[0].evolve(server=f"{self._listener_id}:{pool or ''}")
        super().__init__(transport, label, size)

    # Batch flushes and requeues are timers (`NotificationDispatcher.next_deadline`).
    _timers = True

    def _handler(self) -> NotificationDispatcher:
        return NotificationDispatcher(
            self.targets,
            self.endpoints,
            batch_size=self.batch_size,
            batch_timeout=self.batch_timeout,
            limits=self.transport.settings.decode_limits,
            stats=self.transport.stats,
            tracer=self.transport.tracing,
        )

    def _registrations(self) -> list[tuple[str, str]]:
        server = f"{self._listener_id}:{self.pool or ''}"
        return [(notification_key(t), server) for t in self.targets]
