"""What a server exposes and what it reveals, against a real server process.

The attacks of issue #12 rows 7 and 8: calling an inherited helper of
``object``, a callable instance attribute or a property by name (the getter
must not run) all end in `NoSuchMethod`; a failing call reveals its
exception's type and message, and its traceback only with ``send_tracebacks``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import zmqactors as za
from tests.wire_helpers import raw_exchange, to_server
from zmqactors import wire

pytestmark = pytest.mark.integration

TOPIC = "surface"
SCRIPT = Path(__file__).parent / "expose_server.py"


def raw_call(address: str, method: str) -> Exception:
    """Send a call for ``method`` with raw pyzmq, past the client's own name check."""
    request = wire.Request(
        os.urandom(16), wire.CallKind.CALL, "default", TOPIC, None, None, None, method, {}, {}
    )
    frames = to_server(wire.encode(request), za.Target(TOPIC, server="s"))
    received = raw_exchange(address, frames, expect_reply=True)
    assert received is not None
    reply = wire.decode(received, 1 << 20)
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


def test_a_remote_error_carries_type_and_message_but_no_traceback(spawn_server, transport):
    spawn_server(TOPIC, "s", script=SCRIPT)
    client = za.RPCClient(transport, za.Target(TOPIC), timeout=10)
    with pytest.raises(za.RemoteError) as info:
        client.call("fail", message="bad thing")
    assert info.value.exc_type == "builtins.ValueError"
    assert info.value.value == "bad thing"
    assert info.value.traceback == ""
    assert str(SCRIPT.name) not in str(info.value)


def test_send_tracebacks_sends_the_servers_traceback(
    spawn_server, transport, matchmaker_url, with_query
):
    spawn_server(TOPIC, "s", script=SCRIPT, url=with_query(matchmaker_url, "send_tracebacks=true"))
    client = za.RPCClient(transport, za.Target(TOPIC), timeout=10)
    with pytest.raises(za.RemoteError) as info:
        client.call("fail", message="bad thing")
    assert info.value.value == "bad thing"
    assert "Traceback (most recent call last)" in info.value.traceback
    assert f'{SCRIPT.name}", line' in info.value.traceback
    assert ", in fail\n" in info.value.traceback
