"""core.notify_dispatch: notifications to endpoints, with no sockets."""

from __future__ import annotations

import time

import pytest

from zmqactors import wire
from zmqactors.core.notify_dispatch import (
    MAX_DELIVERIES,
    NotificationDispatcher,
    NotificationFilter,
    NotificationResult,
)
from zmqactors.core.stats import Stats
from zmqactors.topics import Target

pytestmark = pytest.mark.unit

TARGET = Target("notifications")


def body(n: int, priority: str = "info", publisher: str = "compute.1") -> bytes:
    notification = wire.Notification(
        wire.new_msg_id(),
        TARGET.exchange_name,
        TARGET.topic,
        priority,
        publisher,
        "instance.create",
        {"n": n},
        {},
        time.time(),
    )
    return wire.encode(notification)[1]


class Recorder:
    def __init__(self, answer: object = None) -> None:
        self.calls: list[object] = []
        self.answer = answer

    def info(self, *args: object) -> object:
        self.calls.append(args[0] if len(args) == 1 else args[2])
        return self.answer


def dispatcher(endpoint: object, size: int = 1, timeout: float | None = None):
    stats = Stats()
    d = NotificationDispatcher(
        [TARGET],
        [endpoint],
        batch_size=size,
        batch_timeout=timeout,
        limits=1 << 20,
        stats=stats,
    )
    return d, stats


def test_single_notifications_reach_the_endpoint_with_their_payload():
    endpoint = Recorder()
    d, _ = dispatcher(endpoint)
    for n in range(3):
        assert d.handle(body(n)) is None
    assert endpoint.calls == [{"n": 0}, {"n": 1}, {"n": 2}]


def test_batches_flush_by_size_then_by_timeout():
    endpoint = Recorder()
    d, _ = dispatcher(endpoint, size=2, timeout=0.5)
    for n in range(3):
        d.handle(body(n))
    assert [[item["payload"]["n"] for item in batch] for batch in endpoint.calls] == [[0, 1]]
    due = d.next_deadline()
    assert due is not None
    d.on_deadline(due)
    assert [[item["payload"]["n"] for item in batch] for batch in endpoint.calls] == [[0, 1], [2]]
    assert d.next_deadline() is None


def test_a_requeued_notification_is_delivered_again_then_dropped_and_counted():
    endpoint = Recorder(NotificationResult.REQUEUE)
    d, stats = dispatcher(endpoint)
    d.handle(body(7))
    for _ in range(MAX_DELIVERIES - 1):
        due = d.next_deadline()
        assert due is not None
        d.on_deadline(due)
    assert endpoint.calls == [{"n": 7}] * MAX_DELIVERIES
    assert d.next_deadline() is None
    assert stats.snapshot()["notifications_dropped"] == 1


def test_filters_and_bad_input_are_dropped_and_counted():
    endpoint = Recorder()
    endpoint.filter_rule = NotificationFilter(publisher_id=r"^compute\.")
    d, stats = dispatcher(endpoint)
    d.handle(body(1, publisher="network.1"))
    d.handle(body(2))
    d.handle(b"\xff not msgpack")
    d.handle(body(3, priority="loud"))
    assert endpoint.calls == [{"n": 2}]
    assert stats.snapshot()["protocol_errors"] == 2
