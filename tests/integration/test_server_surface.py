"""What a server exposes, against a real server process.

The attacks of issue #12 row 7: calling an inherited helper of ``object``, a
callable instance attribute or a property by name (the getter must not run)
all end in `NoSuchMethod`.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import zmq

import zmqactors as za
from zmqactors import wire

pytestmark = pytest.mark.integration

TOPIC = "surface"
SCRIPT = Path(__file__).parent / "expose_server.py"


@pytest.fixture
def transport(matchmaker_url):
    with za.Transport.from_url(matchmaker_url) as transport:
        yield transport


def raw_call(address: str, method: str) -> Exception:
    """Send a call for ``method`` with raw pyzmq, past the client's own name check."""
    context = zmq.Context()
    dealer = context.socket(zmq.DEALER)
    dealer.setsockopt(zmq.LINGER, 0)
    dealer.setsockopt(zmq.RCVTIMEO, 10_000)
    try:
        dealer.connect(address)
        request = wire.Request(
            os.urandom(16), wire.CallKind.CALL, "default", TOPIC, None, None, None, method, {}, {}
        )
        dealer.send_multipart(wire.encode(request))
        reply = wire.decode(dealer.recv_multipart(), 1 << 20)
    finally:
        dealer.close()
        context.term()
    assert isinstance(reply, wire.ErrorReply), reply
    return wire.error_to_exception(reply)


@pytest.mark.parametrize("exposed", ["methods", "decorated"])
def test_only_methods_are_callable_and_no_getter_runs(spawn_server, transport, exposed):
    proc = spawn_server(TOPIC, "s", "--exposed", exposed, script=SCRIPT)
    client = za.RPCClient(transport, za.Target(TOPIC), timeout=10)
    assert client.call("chosen") == "chosen"
    for name in ("attribute", "secret", "name", "ran"):
        with pytest.raises(za.NoSuchMethod, match=name):
            client.call(name)
    for name in (
        "__init_subclass__",
        "__reduce__",
        "__reduce_ex__",
        "__class__",
        "__getattribute__",
    ):
        assert isinstance(raw_call(proc.address, name), za.NoSuchMethod)
    if exposed == "methods":
        assert client.call("inherited") == "inherited"
        assert client.call("what_ran") == []  # the property's getter never ran
    else:
        for name in ("inherited", "ping", "what_ran"):
            with pytest.raises(za.NoSuchMethod):
                client.call(name)
