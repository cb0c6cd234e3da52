"""Limits against a real server process (issue #19): decoding bombs, and what they cost it.

The server runs in its own process (``limits_server.py``) on real TCP; bombs
go to its port from a raw pyzmq DEALER, as any peer could send them.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import zmq

import zmqactors as za
from tests.helpers import wait_until
from tests.wire_helpers import make_request, to_server
from zmqactors import wire

pytestmark = pytest.mark.integration

LIMITS_SERVER = Path(__file__).parent / "limits_server.py"
MIB = 1024 * 1024


def _bombs(target: za.Target) -> list[list[bytes]]:
    """Bodies under the frame limit (4 MiB) that would each decode to 50-100 MiB of objects."""
    flat = make_request("add", topic=target.topic, args={"a": [{}] * MIB, "b": 1})
    nested = make_request("add", topic=target.topic, args={"a": [[{}] * 10] * 100_000, "b": 1})
    strings = make_request("add", topic=target.topic, args={"a": ["ab"] * MIB, "b": 1})
    return [to_server(wire.encode(m), target) for m in (flat, nested, strings)]


def test_a_decoding_bomb_is_refused_counted_and_costs_no_memory(spawn_server, transport):
    target = za.Target("limits", server="bombed")
    proc = spawn_server(target.topic, target.server, script=LIMITS_SERVER)
    client = za.RPCClient(transport, target, timeout=10)
    assert client.call("add", a=1, b=2) == 3
    before = client.call("memory")
    errors = client.call("stats").get("protocol_errors", 0)
    bombs = _bombs(target) * 4
    context = zmq.Context()
    attacker = context.socket(zmq.DEALER)
    attacker.setsockopt(zmq.LINGER, 0)
    attacker.setsockopt(zmq.SNDTIMEO, 10_000)
    try:
        attacker.connect(proc.address)
        for frames in bombs:
            attacker.send_multipart(frames)
        # Every bomb is counted as a protocol error ...
        wait_until(
            lambda: client.call("stats").get("protocol_errors", 0) >= errors + len(bombs),
            "the bombs to be counted",
            timeout=60,
            interval=0.1,
        )
        # ... and none was answered: a refused request gets nothing back.
        assert attacker.poll(0) == 0
    finally:
        attacker.close()
        context.term()
    after = client.call("memory")
    # Decoded, each bomb would have taken 50-100 MiB at once in a worker (a
    # peak the high-water mark keeps); refused by the scan, the peak grows
    # by little more than the raw frames the server held at once.
    assert after["VmHWM"] - before["VmHWM"] < 48 * MIB, (before, after)
    assert after["VmRSS"] - before["VmRSS"] < 48 * MIB, (before, after)
    # A well-formed call right after is served.
    assert client.call("add", a=20, b=22) == 42
