"""Delivering notifications to endpoints: priorities, filters, batches, requeues.

Pure logic with no sockets, run by worker actors (`Handler`). An endpoint
method is named after the priority (``info``, ``error``, ...) and gets
``(publisher_id, event_type, payload, metadata)``, or, with ``batch_size > 1``,
one list of dicts with those keys plus ``context``. The caller's context is
available through `request_context()` for single notifications.

A method may return `NotificationResult.REQUEUE`: the notification (or the
whole batch) is delivered again to this listener after `REQUEUE_DELAY`
seconds, at most `MAX_DELIVERIES` times in all; after that it is dropped,
logged and counted (``notifications_dropped``).
"""

from __future__ import annotations

import contextlib
import enum
import re
import threading
import time
from typing import TYPE_CHECKING, Any

import structlog

from zmqactors import wire
from zmqactors.core.batch import Batcher
from zmqactors.core.dispatch import decode_as, request_context_set

if TYPE_CHECKING:
    from collections.abc import Sequence

    from zmqactors.core.handler import ServerTracer
    from zmqactors.core.stats import Stats
    from zmqactors.topics import Target

__all__ = [
    "MAX_DELIVERIES",
    "PRIORITIES",
    "REQUEUE_DELAY",
    "NotificationDispatcher",
    "NotificationFilter",
    "NotificationResult",
]

_log = structlog.get_logger("zmqactors.notify")

PRIORITIES = ("audit", "debug", "info", "warn", "error", "critical", "sample")
REQUEUE_DELAY = 0.1
MAX_DELIVERIES = 3


class NotificationResult(enum.Enum):
    """What an endpoint method may return: handled (``None`` too), or deliver again later."""

    HANDLED = "handled"
    REQUEUE = "requeue"


class NotificationFilter:
    """An endpoint's ``filter_rule``: only notifications whose fields match reach it.

    Each argument is a regular expression matched (``re.match``) against the
    field; unset arguments match anything. Raises ``re.error`` for a bad pattern.
    """

    def __init__(self, *, publisher_id: str | None = None, event_type: str | None = None) -> None:
        self._publisher_id = re.compile(publisher_id) if publisher_id is not None else None
        self._event_type = re.compile(event_type) if event_type is not None else None

    def match(self, publisher_id: str, event_type: str) -> bool:
        """Whether a notification with these fields passes."""
        if self._publisher_id is not None and not self._publisher_id.match(publisher_id):
            return False
        return self._event_type is None or bool(self._event_type.match(event_type))


class _Pending:
    """Notifications waiting for a batch flush or a redelivery."""

    __slots__ = ("deliveries", "due", "items")

    def __init__(self, items: list[wire.Notification], due: float, deliveries: int) -> None:
        self.items = items
        self.due = due
        self.deliveries = deliveries


class NotificationDispatcher:
    """Runs notifications through the endpoints of one listener. Thread-safe."""

    def __init__(
        self,
        targets: Sequence[Target],
        endpoints: Sequence[object],
        *,
        batch_size: int,
        batch_timeout: float | None,
        limits: wire.DecodeLimits | int,
        stats: Stats,
        tracer: ServerTracer | None = None,
    ) -> None:
        self._targets = {(t.exchange_name, t.topic) for t in targets}
        self._tracer = tracer
        self._endpoints = tuple(endpoints)
        self._batch_size = batch_size
        # What a notification's body may be and decode to (`wire.decode_body`).
        self._limits = limits
        self._stats = stats
        self._lock = threading.Lock()
        self._batch: Batcher[wire.Notification] = Batcher(batch_size, batch_timeout)
        self._retries: list[_Pending] = []
        self._log = _log.bind(actor="worker", targets=sorted(f"{e}/{t}" for e, t in self._targets))

    # -- Handler ------------------------------------------------------------

    def handle(
        self,
        body: bytes,
        client: bytes = b"",  # noqa: ARG002 - notifications get no reply
        arrival: float | None = None,  # noqa: ARG002 - nor expire
    ) -> bytes | None:
        """Deliver (or batch) the notification in ``body``; never answers, never raises."""
        message = decode_as(wire.Notification, body, self._limits, self._stats, self._log)
        if message is None:
            return None
        if (message.exchange, message.topic) not in self._targets:
            self._stats.incr("misrouted")
            return None
        if message.priority not in PRIORITIES:
            self._stats.incr("protocol_errors")
            self._log.warning("dropped a notification", reason=f"priority {message.priority!r}")
            return None
        if self._batch_size <= 1:
            self._deliver([message], 1)
            return None
        full = self._batch.add(message, time.monotonic())
        if full is not None:
            self._deliver(full, 1)
        return None

    def next_deadline(self) -> float | None:
        """The next batch flush or redelivery."""
        with self._lock:
            times = [p.due for p in self._retries]
        if self._batch.due is not None:
            times.append(self._batch.due)
        return min(times) if times else None

    def on_deadline(self, now: float) -> None:
        """Flush a timed-out batch and redeliver what is due."""
        flush = self._batch.take_due(now)
        with self._lock:
            due = [p for p in self._retries if p.due <= now]
            self._retries = [p for p in self._retries if p.due > now]
        if flush:
            self._deliver(flush, 1)
        for pending in due:
            self._deliver(pending.items, pending.deliveries + 1)

    # -- delivery -------------------------------------------------------------

    def _deliver(self, items: list[wire.Notification], deliveries: int) -> None:
        requeue: list[wire.Notification] = []
        for priority, group in _by_priority(items):
            for endpoint in self._endpoints:
                method = _method(endpoint, priority)
                if method is None:
                    continue
                chosen = _filtered(endpoint, group)
                if not chosen:
                    continue
                if self._call(method, chosen) is NotificationResult.REQUEUE:
                    requeue.extend(chosen)
        if requeue:
            self._requeue(requeue, deliveries)

    def _call(self, method: Any, items: list[wire.Notification]) -> object:
        try:
            if self._batch_size > 1:
                return method([_as_dict(n) for n in items])
            (item,) = items
            with request_context_set(item.context), self._span(item):
                return method(item.publisher_id, item.event_type, item.payload, _metadata(item))
        except Exception:  # noqa: BLE001 - an endpoint's failure must not stop the worker
            self._stats.incr("notification_errors")
            self._log.exception(
                "notification endpoint failed", method=getattr(method, "__name__", "?")
            )
            return NotificationResult.HANDLED

    def _span(self, item: wire.Notification) -> contextlib.AbstractContextManager[None]:
        """The consumer span continuing the publisher's trace, if both trace."""
        if self._tracer is None or not item.trace:
            return contextlib.nullcontext()
        return self._tracer.served(item.trace, item.topic, item.event_type, call=False)

    def _requeue(self, items: list[wire.Notification], deliveries: int) -> None:
        if deliveries >= MAX_DELIVERIES:
            self._stats.incr("notifications_dropped", len(items))
            self._log.warning(
                "dropped notifications requeued too often", count=len(items), deliveries=deliveries
            )
            return
        self._stats.incr("notifications_requeued", len(items))
        with self._lock:
            self._retries.append(_Pending(items, time.monotonic() + REQUEUE_DELAY, deliveries))


def _by_priority(
    items: list[wire.Notification],
) -> list[tuple[str, list[wire.Notification]]]:
    groups: dict[str, list[wire.Notification]] = {}
    for item in items:
        groups.setdefault(item.priority, []).append(item)
    return list(groups.items())


def _method(endpoint: object, priority: str) -> Any:
    method = getattr(endpoint, priority, None)
    if method is None or not callable(method) or isinstance(method, type):
        return None
    return method


def _filtered(endpoint: object, items: list[wire.Notification]) -> list[wire.Notification]:
    rule = getattr(endpoint, "filter_rule", None)
    if rule is None:
        return items
    return [n for n in items if rule.match(n.publisher_id, n.event_type)]


def _metadata(item: wire.Notification) -> dict[str, Any]:
    return {"message_id": item.msg_id.hex(), "timestamp": item.timestamp, "priority": item.priority}


def _as_dict(item: wire.Notification) -> dict[str, Any]:
    return {
        "publisher_id": item.publisher_id,
        "event_type": item.event_type,
        "payload": item.payload,
        "metadata": _metadata(item),
        "context": item.context,
    }
