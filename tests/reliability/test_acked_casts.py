"""Acknowledged casts against real server processes: duplicates, a SIGKILLed server.

``prepare(ack=True).cast(...)`` returns once a server has run the method; the
client sends the same message id again (0.2 s, doubling to 2 s, the route
looked up afresh) until a server acknowledges it, and a server runs each
message id once (README, "Guarantees").
"""

from __future__ import annotations

import functools
import signal
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import zmq

import zmqactors as za
from tests.helpers import wait_until
from tests.wire_helpers import to_server
from zmqactors import wire

if TYPE_CHECKING:
    from collections.abc import Callable

pytestmark = pytest.mark.reliability

ACK_SERVER = Path(__file__).parent / "ack_server.py"


@pytest.fixture
def spawn(spawn_server: Callable[..., Any]) -> Callable[..., Any]:
    """Start ``ack_server.py`` processes on this test's matchmaker (``spawn_server``'s)."""
    return functools.partial(spawn_server, script=ACK_SERVER)


def acked_request(topic: str, value: object, msg_id: bytes, server: str = "node-1") -> list[bytes]:
    return to_server(
        wire.request_frames(
            za.Target(topic),
            wire.CallKind.ACKED_CAST,
            "record",
            args={"value": value},
            context={},
            timeout=None,
            msg_id=msg_id,
        ),
        za.Target(topic, server=server),
    )


def test_the_same_message_id_twice_runs_once_and_is_acknowledged_twice(matchmaker_url, spawn):
    server = spawn("ack-dup", "node-1")
    context = zmq.Context.instance()
    dealer = context.socket(zmq.DEALER)
    dealer.setsockopt(zmq.LINGER, 0)
    dealer.setsockopt(zmq.RCVTIMEO, 10_000)
    dealer.connect(server.address)
    try:
        msg_id = wire.new_msg_id()
        acks = []
        for _ in range(2):
            dealer.send_multipart(acked_request("ack-dup", "once", msg_id))
            acks.append(wire.decode(dealer.recv_multipart(), 1 << 20))
        other = wire.new_msg_id()
        dealer.send_multipart(acked_request("ack-dup", "other", other))
        acks.append(wire.decode(dealer.recv_multipart(), 1 << 20))
    finally:
        dealer.close()
    assert acks == [wire.Ack(msg_id), wire.Ack(msg_id), wire.Ack(other)]
    with za.Transport.from_url(matchmaker_url) as transport:
        client = za.RPCClient(transport, za.Target("ack-dup"), timeout=10)
        assert client.call("recorded") == ["once", "other"]


def test_an_acked_cast_survives_a_server_killed_before_it_ran_and_restarted(matchmaker_url, spawn):
    first = spawn("ack-restart", "node-1")
    with za.Transport.from_url(matchmaker_url) as transport:
        client = za.RPCClient(transport, za.Target("ack-restart"), timeout=10)
        assert client.call("count") == 0  # connected, route cached
        first.signal(signal.SIGSTOP)  # the cast reaches its socket but never runs there
        outcome: list[BaseException | None] = []

        def send() -> None:
            try:
                client.prepare(ack=True, timeout=60).cast("record", value="survivor")
            except BaseException as exc:  # noqa: BLE001 - reported below
                outcome.append(exc)
            else:
                outcome.append(None)

        sender = threading.Thread(target=send)
        sender.start()
        # Unacknowledged, it is being sent again.
        wait_until(
            lambda: transport.stats.snapshot().get("ack_retries", 0) >= 2, "retries", timeout=30.0
        )
        assert outcome == []
        first.signal(signal.SIGKILL)
        first.proc.wait(timeout=10)
        second = spawn("ack-restart", "node-1")  # same topic and name, a new port
        assert second.address != first.address
        sender.join(timeout=90)
        assert not sender.is_alive()
        assert outcome == [None]
        # Exactly once on the restarted server, however many copies reached it.
        assert client.prepare(timeout=10).call("recorded") == ["survivor"]


def test_an_acked_cast_with_no_server_alive_times_out(matchmaker_url, spawn):
    server = spawn("ack-dead", "node-1")
    with za.Transport.from_url(matchmaker_url) as transport:
        client = za.RPCClient(transport, za.Target("ack-dead"), timeout=10)
        assert client.call("count") == 0
        server.signal(signal.SIGKILL)
        server.proc.wait(timeout=10)
        with pytest.raises(za.MessagingTimeout, match="not acknowledged"):
            client.prepare(ack=True, timeout=1.5).cast("record", value="lost")
        assert transport.stats.snapshot().get("ack_retries", 0) >= 1
