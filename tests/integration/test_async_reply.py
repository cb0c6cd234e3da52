"""Replies sent later from another thread, and heartbeats that keep a call alive.

The oslo.messaging driver answers outside the listener (oslo's executor calls
``reply()``), and uses heartbeats for ``call_monitor_timeout``: both go
through `Service.send_reply` and the reply-waiter's monitor deadline.
"""

from __future__ import annotations

import concurrent.futures
import queue
import threading
import time

import pytest

import zmqactors as za
from zmqactors import wire
from zmqactors.topics import Target, matchmaker_key
from zmqactors.transport.service import Service

pytestmark = pytest.mark.integration


class _Later:
    """A handler that hands requests to the test, which answers them later."""

    def __init__(self, inbox: queue.Queue[tuple[bytes, wire.Request]]) -> None:
        self._inbox = inbox

    def handle(
        self,
        body: bytes,
        client: bytes = b"",
        arrival: float | None = None,  # noqa: ARG002 - answers later, never expires
    ) -> bytes | None:
        request = wire.decode_body(body, 1 << 20)
        assert isinstance(request, wire.Request)
        self._inbox.put((client, request))
        return None

    def next_deadline(self) -> float | None:
        return None

    def on_deadline(self, now: float) -> None:
        pass


class LaterServer(Service):
    def __init__(self, transport: za.Transport, target: Target) -> None:
        self.target = target
        self.inbox: queue.Queue[tuple[bytes, wire.Request]] = queue.Queue()
        super().__init__(transport, target, 2)

    def _handler(self) -> _Later:
        return _Later(self.inbox)

    def _registrations(self) -> list[tuple[str, str]]:
        return [(matchmaker_key(self.target), self.target.server or "")]


def _call(transport: za.Transport, target: Target, timeout: float, monitor: float | None):
    runtime = transport.runtime()
    route = runtime.route(target)
    msg_id = wire.new_msg_id()
    request = wire.Request(
        msg_id, wire.CallKind.CALL, "default", target.topic, None, None, None, "m", {}, {}
    )
    header, body = wire.encode(request)
    future: concurrent.futures.Future[object] = concurrent.futures.Future()
    runtime.call(
        route,
        (header, body),
        msg_id,
        target,
        "m",
        future,
        deadline=time.monotonic() + timeout,
        timeout=timeout,
        monitor=monitor,
    )
    return future


@pytest.fixture
def setup():
    with za.Transport.from_url("zmq+memory://async-reply") as transport:
        server = LaterServer(transport, Target("later", server="s"))
        with server:
            yield transport, server


def test_reply_sent_later_from_another_thread_reaches_the_caller(setup):
    transport, server = setup
    future = _call(transport, Target("later"), timeout=10, monitor=None)
    client, request = server.inbox.get(timeout=10)
    reply = wire.encode(wire.Reply(request.msg_id, "done later"))[1]
    threading.Thread(target=server.send_reply, args=(client, reply)).start()
    assert future.result(timeout=10) == "done later"


def test_heartbeats_keep_a_call_alive_past_its_monitor_timeout(setup):
    transport, server = setup
    started = time.monotonic()
    future = _call(transport, Target("later"), timeout=10, monitor=0.3)
    client, request = server.inbox.get(timeout=10)
    while time.monotonic() - started < 1.0:  # over three monitor periods
        server.send_reply(client, wire.encode(wire.Heartbeat(request.msg_id))[1])
        time.sleep(0.05)
    assert not future.done()
    server.send_reply(client, wire.encode(wire.Reply(request.msg_id, 42))[1])
    assert future.result(timeout=10) == 42


def test_without_heartbeats_the_monitor_fails_the_call_early(setup):
    transport, server = setup
    started = time.monotonic()
    future = _call(transport, Target("later"), timeout=10, monitor=0.3)
    server.inbox.get(timeout=10)
    with pytest.raises(za.MessagingTimeout, match="no heartbeat"):
        future.result(timeout=10)
    assert time.monotonic() - started < 2.0
