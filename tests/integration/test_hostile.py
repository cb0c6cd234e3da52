"""Whatever the network sends, a server survives it and serves the next good call.

Frames go straight to a running server's port with raw pyzmq (a DEALER, as a
client would connect) and raw TCP (a port scanner's bytes, a ZMTP greeting
cut short). After each burst a legitimate call succeeds within a second, and
the bad input was counted, not fatal.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import tracemalloc
from pathlib import Path

import msgspec
import pytest
import zmq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import zmqactors as za
from tests.wire_helpers import to_server
from zmqactors import wire

pytestmark = pytest.mark.integration

TARGET = za.Target("hostile", server="s")
DEST = to_server([wire.HEADER, b""], TARGET)[0]


class Endpoint:
    def ping(self) -> str:
        return "pong"

    def _secret(self) -> str:
        return "leaked"

    not_callable = "value"


@pytest.fixture(scope="module")
def served():
    transport = za.Transport.from_url("zmq+memory://hostile?max_message_size=65536")
    server = za.RPCServer(transport, TARGET, [Endpoint()])
    server.start()
    client = za.RPCClient(transport, za.Target("hostile"), timeout=5)
    context = zmq.Context()
    attacker = context.socket(zmq.DEALER)
    attacker.setsockopt(zmq.LINGER, 0)
    attacker.connect(server.address)
    try:
        yield transport, server, client, attacker
    finally:
        attacker.close()
        context.term()
        server.stop()
        server.wait(timeout=10)
        transport.close()


def _still_serves(client: za.RPCClient) -> None:
    started = time.monotonic()
    assert client.call("ping") == "pong"
    assert time.monotonic() - started < 1.0


def _nested_request(depth: int) -> bytes:
    # A Request array of 11 fields whose args (field 10) is `depth` nested arrays.
    head = msgspec.msgpack.encode(
        ["q", b"x" * 16, 1, "default", "hostile", None, None, None, "ping"]
    )
    return b"\x9b" + head[1:] + b"\x91" * depth + b"\xc0" + b"\x80"


def _request(**changes: object) -> wire.Request:
    fields: dict[str, object] = {
        "msg_id": os.urandom(16),
        "kind": wire.CallKind.CALL,
        "exchange": "default",
        "topic": "hostile",
        "server": None,
        "namespace": None,
        "version": None,
        "method": "ping",
        "args": {},
        "context": {},
    }
    fields.update(changes)
    return wire.Request(**fields)  # type: ignore[arg-type]


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(st.binary(max_size=256), max_size=10))
def test_random_frames(served, frames):
    _, _, client, attacker = served
    if frames:
        attacker.send_multipart(frames)
    else:
        attacker.send(b"")
    _still_serves(client)


def test_crafted_bad_messages_are_dropped_and_counted(served):
    transport, _, client, attacker = served
    before = transport.stats.snapshot().get("protocol_errors", 0)
    head = DEST  # the header with the destination after it
    good = wire.encode(_request())[1]
    cases = [
        [b"ZMQA\x07" + head[len(wire.HEADER) :], good],  # another protocol version
        [b"HTTP/1.1 200 OK", good],  # not this protocol
        [head],  # no body
        [wire.HEADER, head[len(wire.HEADER) :], good],  # destination in a frame of its own
        [head, msgspec.msgpack.encode(["zz", 1, 2])],  # unknown message type
        [head, good[: len(good) // 2]],  # truncated
        [head, _nested_request(30_000)],  # nesting far deeper than the recursion limit
        # wrong types
        [head, msgspec.msgpack.encode(["q", 5, "CALL", 3, 4, 5, 6, 7, 8, 9, 10])],
        [head, wire.encode(wire.Reply(os.urandom(16), "unknown id"))[1]],
        [head, wire.encode(wire.Heartbeat(os.urandom(16)))[1]],
        # Over max_message_size: libzmq itself drops the connection (MAXMSGSIZE),
        # so it goes last; the attacker's DEALER reconnects by itself.
        [head, b"\x00" * 70_000],
    ]
    for frames in cases:
        attacker.send_multipart(frames)
    _still_serves(client)
    deadline = time.monotonic() + 5
    while transport.stats.snapshot().get("protocol_errors", 0) - before < len(cases) - 1:
        assert time.monotonic() < deadline, transport.stats.snapshot()
        time.sleep(0.01)


def test_private_and_non_callable_names_are_refused(served):
    _, _, client, attacker = served
    with pytest.raises(ValueError, match="_secret"):
        client.call("_secret")
    with pytest.raises(za.NoSuchMethod):
        client.call("not_callable")
    # The same, bypassing the client's own check.
    attacker.send_multipart(to_server(wire.encode(_request(method="_secret")), TARGET))
    attacker.send_multipart(to_server(wire.encode(_request(method="__class__")), TARGET))
    replies = [wire.decode(attacker.recv_multipart(), 1 << 20) for _ in range(2)]
    assert all(isinstance(r, wire.ErrorReply) for r in replies)
    assert {r.kind for r in replies} == {wire.ErrorKind.NO_SUCH_METHOD}  # type: ignore[union-attr]
    _still_serves(client)


def test_raw_tcp_garbage_and_cut_greetings(served):
    _, server, client, _ = served
    host, port = server.address.removeprefix("tcp://").rsplit(":", 1)
    payloads = [
        b"GET / HTTP/1.0\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + os.urandom(64),  # a TLS hello
        b"\xff\x00\x00\x00\x00\x00\x00\x00\x01\x7f",  # a ZMTP greeting cut short
        os.urandom(4096),
        b"",
    ]
    for payload in payloads:
        with socket.create_connection((host, int(port)), timeout=5) as raw:
            raw.settimeout(1)
            raw.sendall(payload)
    _still_serves(client)


def test_memory_stays_bounded_over_10000_bad_messages(served):
    transport, _, client, attacker = served

    def rss_kib() -> int:
        with Path("/proc/self/status").open() as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def dropped() -> int:
        return transport.stats.snapshot().get("protocol_errors", 0)

    def burst_and_drain(count: int) -> None:
        # Every random body fails to decode and is counted: wait until all
        # were, so no measurement sees messages still queued in ZeroMQ or
        # the poller.
        until = dropped() + count
        for i in range(count):
            attacker.send_multipart([DEST, os.urandom(64 + i % 512)])
        deadline = time.monotonic() + 60
        while dropped() < until:
            assert time.monotonic() < deadline, f"{until - dropped()} bad messages not counted"
            time.sleep(0.01)

    # A first burst of the same size warms what grows once: malloc's
    # per-thread arenas of the listeners it wakes (up to 30 MB here), caches.
    burst_and_drain(10_000)
    _still_serves(client)
    before = rss_kib()
    burst_and_drain(10_000)
    _still_serves(client)
    grown = rss_kib() - before
    # A coarse bound: RSS also moves with malloc's per-thread arenas, which
    # a burst that wakes listeners not woken before can grow by 30 MB.
    assert grown < 48_000, f"RSS grew by {grown} KiB over 10,000 bad messages"
    # The exact one: what Python still holds of what it allocated during a
    # burst. A leak of even 100 bytes a message would show as 1 MB.
    # (tracemalloc's own traces inflate RSS, so it runs over a burst of its own.)
    tracemalloc.start()
    try:
        burst_and_drain(10_000)
        _still_serves(client)
        live, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert live < 1_000_000, f"{live} bytes allocated during 10,000 bad messages still live"
    assert threading.active_count() < 100
