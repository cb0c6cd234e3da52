"""Fuzzing the wire decoder: whatever arrives, ``decode`` gives a message or `ProtocolError`.

A bounded fuzz target that CI runs with the rest of the unit tests: a few
thousand generated inputs per strategy (a few seconds in all), from raw
bytes to msgpack documents of every shape and valid messages with bytes
flipped, cut or spliced. Any other exception (``KeyError``, ``TypeError``,
``RecursionError``, ...) or a result that is not a message fails the test
with the input that caused it. ``tests/fuzz/fuzz_decoder.py`` is the same
target for atheris, for longer coverage-guided runs.
"""

from __future__ import annotations

import contextlib
import typing
from typing import TYPE_CHECKING

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from zmqactors import wire
from zmqactors.errors import ProtocolError

if TYPE_CHECKING:
    import random

pytestmark = pytest.mark.unit

MAX = 64 * 1024
# Every message type the decoder may return (Ack included), from the union itself.
MESSAGE_TYPES = typing.get_args(wire.Message)


def fuzz(examples: int) -> settings:
    return settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


# Every value msgpack can carry, nested: what a hostile peer can encode.
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=True)
    | st.text(max_size=40)
    | st.binary(max_size=40)
)
documents = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=6)
        | st.dictionaries(
            st.text(max_size=10) | st.integers(-(2**63), 2**63 - 1) | st.binary(max_size=8),
            inner,
            max_size=6,
        )
    ),
    max_leaves=12,
)
tags = st.sampled_from(["q", "r", "e", "n", "h", "x", ""])
msg_ids = st.binary(min_size=16, max_size=16) | st.binary(max_size=40)
# Arrays shaped like ours: a known (or unknown) tag, then fields of any type.
tagged = st.builds(lambda tag, fields: [tag, *fields], tags, st.lists(documents, max_size=13))
almost_valid = st.builds(
    lambda tag, msg_id, rest: [tag, msg_id, *rest], tags, msg_ids, st.lists(documents, max_size=12)
)


def valid_bodies() -> st.SearchStrategy[bytes]:
    request = st.builds(
        wire.Request,
        msg_id=st.binary(min_size=16, max_size=16),
        kind=st.sampled_from(wire.CallKind),
        exchange=st.text(max_size=10),
        topic=st.text(max_size=10),
        server=st.none() | st.text(max_size=10),
        namespace=st.none(),
        version=st.none() | st.just("1.0"),
        method=st.text(max_size=10),
        args=st.dictionaries(st.text(max_size=5), scalars, max_size=3),
        context=st.dictionaries(st.text(max_size=5), scalars, max_size=3),
        timeout=st.none() | st.floats(min_value=0, max_value=100),
    )
    reply = st.builds(wire.Reply, msg_id=st.binary(min_size=16, max_size=16), result=documents)
    return (request | reply).map(lambda message: wire.encode(message)[1])


def mutate(body: bytes, rng: random.Random) -> bytes:
    """``body`` with one to four bytes flipped, removed or inserted, or cut short."""
    data = bytearray(body)
    for _ in range(rng.randint(1, 4)):
        action = rng.choice(("flip", "delete", "insert", "truncate"))
        at = rng.randrange(len(data)) if data else 0
        if action == "flip" and data:
            data[at] ^= rng.randint(1, 255)
        elif action == "delete" and data:
            del data[at]
        elif action == "insert":
            data[at:at] = rng.randbytes(rng.randint(1, 8))
        else:
            del data[at:]
    return bytes(data)


def check(frames: list[bytes]) -> None:
    """The property: a message of ours, or `ProtocolError`; never anything else."""
    try:
        message = wire.decode(frames, MAX)
    except ProtocolError:
        return
    assert isinstance(message, MESSAGE_TYPES)
    assert len(message.msg_id) == wire.MSG_ID_SIZE


@fuzz(2000)
@given(st.binary(max_size=512))
def test_random_bytes_decode_to_a_message_or_protocol_error(body):
    check([wire.HEADER, body])
    # decode_body alone (what the poller uses for a stopping server) too.
    with contextlib.suppress(ProtocolError):
        wire.decode_body(body, MAX)


@fuzz(400)
@given(documents | tagged | almost_valid)
def test_any_msgpack_document_decodes_to_a_message_or_protocol_error(document):
    check([wire.HEADER, msgspec.msgpack.encode(document)])


@fuzz(250)
@given(valid_bodies(), st.randoms(use_true_random=False))
def test_valid_messages_with_bytes_flipped_cut_or_spliced(body, rng):
    check([wire.HEADER, body])
    for _ in range(20):
        check([wire.HEADER, mutate(body, rng)])


@fuzz(500)
@given(st.lists(st.binary(max_size=64), max_size=4), st.binary(max_size=64), st.integers(0, 4))
def test_any_frames_decode_to_a_message_or_protocol_error(frames, body, at):
    check([*frames[:at], wire.HEADER, body, *frames[at:]])
    check(frames)


@fuzz(500)
@given(st.binary(max_size=8))
def test_any_header_but_ours_is_refused_before_the_body(header):
    body = wire.encode(wire.Heartbeat(bytes(16)))[1]
    if header == wire.HEADER:
        assert wire.decode([header, body], MAX) == wire.Heartbeat(bytes(16))
    else:
        with pytest.raises(ProtocolError):
            wire.decode([header, body], MAX)


@settings(max_examples=50, deadline=None)
@given(st.integers(min_value=1, max_value=200_000))
def test_deep_nesting_is_a_protocol_error_not_a_crash(depth):
    nested = b"\x91" * depth + b"\xc0"  # [[[...[nil]...]]]
    check([wire.HEADER, nested])
    # The same inside a reply's result.
    check([wire.HEADER, b"\x93\xa1r\xc4\x10" + bytes(16) + nested])
