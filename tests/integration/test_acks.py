"""Acknowledged casts in one process: the API and its errors."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import pytest

import zmqactors as za

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.integration


class Recorder:
    def __init__(self) -> None:
        self.got: list[object] = []
        self.lock = threading.Lock()

    def record(self, value: object) -> None:
        with self.lock:
            self.got.append(value)

    def fail(self, value: object) -> None:
        self.record(value)
        raise RuntimeError("boom")


@pytest.fixture
def transport(request: pytest.FixtureRequest) -> Iterator[za.Transport]:
    with za.Transport.from_url(f"zmq+memory://acks-{id(request)}") as transport:
        yield transport


@pytest.fixture
def recorder(transport: za.Transport) -> Iterator[Recorder]:
    endpoint = Recorder()
    with za.RPCServer(transport, za.Target("acks", server="node-1"), [endpoint]):
        yield endpoint


def test_an_acked_cast_has_run_when_it_returns(transport, recorder):
    client = za.RPCClient(transport, za.Target("acks"), timeout=10).prepare(ack=True)
    for i in range(20):
        client.cast("record", value=i)
        assert recorder.got == list(range(i + 1))


def test_an_acked_cast_whose_method_raises_is_acknowledged_once(transport, recorder):
    client = za.RPCClient(transport, za.Target("acks"), timeout=10, ack=True)
    client.cast("fail", value="x")
    assert recorder.got == ["x"]


def test_an_acked_cast_to_a_missing_method_raises_at_once(transport, recorder):
    client = za.RPCClient(transport, za.Target("acks"), timeout=10).prepare(ack=True)
    with pytest.raises(za.NoSuchMethod):
        client.cast("nope", value=1)
    assert recorder.got == []


def test_fanout_with_ack_is_refused(transport, recorder):
    client = za.RPCClient(transport, za.Target("acks"), timeout=10)
    with pytest.raises(ValueError, match="fanout"):
        client.prepare(fanout=True, ack=True).cast("record", value=1)
    assert recorder.got == []


def test_an_acked_cast_with_no_server_registered_times_out(transport):
    client = za.RPCClient(transport, za.Target("nobody"), timeout=0.5, ack=True)
    with pytest.raises(za.MessagingTimeout, match="not acknowledged"):
        client.cast("record", value=1)


def test_ack_is_kept_by_prepare_and_calls_are_unchanged(transport, recorder):
    client = za.RPCClient(transport, za.Target("acks"), timeout=10).prepare(ack=True)
    assert client.prepare(timeout=5).ack is True
    assert client.prepare(ack=False).ack is False
    assert "ack" in repr(client)
    assert client.call("record", value="call") is None
    assert recorder.got == ["call"]


@pytest.mark.parametrize("value", [1, "yes", None])
def test_ack_must_be_a_bool(transport, value):
    with pytest.raises(TypeError, match="ack"):
        za.RPCClient(transport, za.Target("acks"), ack=value)
