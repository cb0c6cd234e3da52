"""Tests of the sans-IO wire protocol: round trips, framing and hostile input."""

from __future__ import annotations

import concurrent.futures
import math
import os

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.wire_helpers import make_request, msgpack_values
from zmqactors import wire
from zmqactors.errors import (
    MessagingError,
    NoRespondersError,
    NoSuchMethod,
    ProtocolError,
    RemoteError,
    ServerBusyError,
    UnsupportedVersion,
)
from zmqactors.wire import (
    HEADER,
    PROTOCOL_VERSION,
    Ack,
    CallKind,
    ErrorKind,
    ErrorReply,
    Reply,
    Request,
)

pytestmark = pytest.mark.unit

MAX = 1 << 20
MSG_ID = bytes(range(16))

# -- strategies -------------------------------------------------------------------

values = msgpack_values()
kwargs = st.dictionaries(st.text(max_size=10), values, max_size=5)
msg_ids = st.binary(min_size=16, max_size=16)
optional_text = st.one_of(st.none(), st.text(max_size=20))

requests = st.builds(
    Request,
    msg_id=msg_ids,
    kind=st.sampled_from(CallKind),
    exchange=st.text(max_size=20),
    topic=st.text(max_size=20),
    server=optional_text,
    namespace=optional_text,
    version=optional_text,
    method=st.text(max_size=20),
    args=kwargs,
    context=kwargs,
    timeout=st.one_of(st.none(), st.floats(allow_nan=False)),
)
replies = st.builds(Reply, msg_id=msg_ids, result=values)
error_replies = st.builds(
    ErrorReply,
    msg_id=msg_ids,
    kind=st.sampled_from(ErrorKind),
    exc_type=st.text(max_size=30),
    message=st.text(max_size=60),
    traceback=st.text(max_size=100),
)
acks = st.builds(Ack, msg_id=msg_ids)
messages = st.one_of(requests, replies, error_replies, acks)


def request(**changes: object) -> Request:
    fields: dict[str, object] = {
        "msg_id": MSG_ID,
        "method": "add",
        "args": {"a": 1, "b": 2},
        "context": {"user": "u1"},
        **changes,
    }
    return make_request(**fields)


def request_fields(**changes: object) -> list[object]:
    """A Request as the raw array it travels as, to be broken field by field."""
    fields: list[object] = [
        "q",
        MSG_ID,
        1,
        "default",
        "compute",
        None,
        None,
        None,
        "add",
        {"a": 1},
        {},
        None,
    ]
    names = [
        "tag",
        "msg_id",
        "kind",
        "exchange",
        "topic",
        "server",
        "namespace",
        "version",
        "method",
        "args",
        "context",
        "timeout",
    ]
    for name, value in changes.items():
        fields[names.index(name)] = value
    return fields


# -- round trips ------------------------------------------------------------------


@settings(deadline=None)
@given(messages)
def test_round_trip(message):
    frames = wire.encode(message)
    assert wire.decode(frames, MAX) == message
    assert wire.decode_body(frames[1], MAX) == message


@settings(deadline=None)
@given(messages)
def test_decoded_message_has_the_same_type_and_fields(message):
    decoded = wire.decode(wire.encode(message), MAX)
    assert type(decoded) is type(message)
    for field in message.__struct_fields__:
        assert getattr(decoded, field) == getattr(message, field)


def test_tuples_decode_as_lists():
    decoded = wire.decode(wire.encode(request(args={"t": (1, (2, 3))})), MAX)
    assert decoded.args == {"t": [1, [2, 3]]}


def test_enums_decode_as_enums():
    decoded = wire.decode(wire.encode(request(kind=CallKind.CAST)), MAX)
    assert decoded.kind is CallKind.CAST
    error = ErrorReply(MSG_ID, ErrorKind.NOT_SERVED, "x", "y")
    assert wire.decode(wire.encode(error), MAX).kind is ErrorKind.NOT_SERVED


def test_ack_is_its_own_tagged_message():
    body = wire.encode(Ack(MSG_ID))[1]
    assert msgspec.msgpack.decode(body) == ["a", MSG_ID]
    decoded = wire.decode_body(body, MAX)
    assert isinstance(decoded, Ack)
    assert decoded.msg_id == MSG_ID


def test_acked_cast_kind_round_trips():
    decoded = wire.decode(wire.encode(request(kind=CallKind.ACKED_CAST)), MAX)
    assert decoded.kind is CallKind.ACKED_CAST


def test_ack_with_a_bad_msg_id_is_refused():
    body = msgspec.msgpack.encode(["a", "not bytes"])
    with pytest.raises(ProtocolError):
        wire.decode_body(body, MAX)


def test_messages_are_frozen():
    message = request()
    with pytest.raises(AttributeError):
        message.method = "sub"  # type: ignore[misc]


def test_encode_gives_header_and_body():
    frames = wire.encode(Reply(MSG_ID, 3))
    assert isinstance(frames, list)
    assert len(frames) == 2
    assert frames[0] == HEADER == b"ZMQA" + bytes([PROTOCOL_VERSION])
    assert isinstance(frames[1], bytes)
    assert wire.decode_body(frames[1], MAX) == Reply(MSG_ID, 3)


def test_new_msg_ids_are_16_bytes_and_unique_across_threads():
    def draw(_: int) -> list[bytes]:
        return [wire.new_msg_id() for _ in range(5000)]

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        ids = [i for batch in pool.map(draw, range(4), timeout=30) for i in batch]
    assert len(set(ids)) == len(ids) == 20000
    assert all(len(i) == wire.MSG_ID_SIZE == 16 for i in ids)


def test_msg_ids_are_random_throughout_not_a_prefix_and_a_counter():
    # A server sees every id sent to it: no part of one may predict the next.
    ids = [wire.new_msg_id() for _ in range(2000)]
    assert len({i[:8] for i in ids}) == len({i[8:] for i in ids}) == 2000
    ones = sum(int.from_bytes(i, "big").bit_count() for i in ids)
    assert 0.48 < ones / (128 * len(ids)) < 0.52


def test_a_forked_child_draws_ids_the_parent_never_will():
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: send ten ids, leave at once
        os.write(write, b"".join(wire.new_msg_id() for _ in range(10)))
        os._exit(0)
    os.close(write)
    try:
        child = b""
        while len(child) < 160:
            chunk = os.read(read, 160)
            assert chunk, "the child sent fewer than ten ids"
            child += chunk
    finally:
        os.close(read)
        assert os.waitpid(pid, 0)[1] == 0
    child_ids = {child[i : i + 16] for i in range(0, 160, 16)}
    parent_ids = {wire.new_msg_id() for _ in range(10)}
    assert not child_ids & parent_ids
    assert {i[:8] for i in child_ids} != {i[:8] for i in parent_ids}


# -- framing ----------------------------------------------------------------------


@pytest.mark.parametrize("count", [0, 1, 3])
def test_wrong_frame_count(count):
    frames = [HEADER, wire.encode(request())[1], b"extra"][:count]
    with pytest.raises(ProtocolError, match=f"got {count}"):
        wire.decode(frames, MAX)


@given(st.binary(max_size=32).filter(lambda b: b != HEADER))
def test_bad_header_is_refused(header):
    body = wire.encode(request())[1]
    with pytest.raises(ProtocolError):
        wire.decode([header, body], MAX)


@pytest.mark.parametrize("version", [0, 1, 3, 255])
def test_other_protocol_version_is_named(version):
    body = wire.encode(request())[1]
    with pytest.raises(ProtocolError, match=f"unsupported protocol version {version}") as info:
        wire.decode([b"ZMQA" + bytes([version]), body], MAX)
    assert str(PROTOCOL_VERSION) in str(info.value)
    with pytest.raises(ProtocolError, match=f"version {version}"):
        wire.check_header(b"ZMQA" + bytes([version]))


def test_check_header_accepts_ours():
    wire.check_header(HEADER)


def test_oversized_body_names_the_limit():
    body = wire.encode(request(args={"blob": b"x" * 1000}))[1]
    limit = len(body) - 1
    with pytest.raises(ProtocolError, match=f"limit of {limit}"):
        wire.decode([HEADER, body], limit)
    assert wire.decode([HEADER, body], len(body)).args["blob"] == b"x" * 1000


# -- hostile bodies -----------------------------------------------------------------


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=512))
def test_garbage_body_only_ever_raises_protocol_error(body):
    try:
        message = wire.decode([HEADER, body], MAX)
    except ProtocolError:
        return
    # A few random byte strings are valid messages; then they are well formed.
    assert isinstance(message, (Request, Reply, ErrorReply))
    assert len(message.msg_id) == 16


@given(st.binary(min_size=1, max_size=200), st.integers(min_value=0, max_value=199))
def test_corrupted_valid_body_only_ever_raises_protocol_error(noise, where):
    body = bytearray(wire.encode(request(args={"a": [1, "two", b"3"]}))[1])
    where %= len(body)
    body[where : where + len(noise)] = noise
    try:
        message = wire.decode_body(bytes(body), MAX)
    except ProtocolError:
        return
    assert isinstance(message, (Request, Reply, ErrorReply))
    assert len(message.msg_id) == 16


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param(request_fields(msg_id=5), id="msg_id-int"),
        pytest.param(request_fields(msg_id="0123456789abcdef"), id="msg_id-str"),
        pytest.param(request_fields(kind=99), id="kind-99"),
        pytest.param(request_fields(kind="call"), id="kind-str"),
        pytest.param(request_fields(args=[1, 2]), id="args-list"),
        pytest.param(request_fields(args={1: 2}), id="args-int-key"),
        pytest.param(request_fields(context="ctx"), id="context-str"),
        pytest.param(request_fields(topic=7), id="topic-int"),
        pytest.param(request_fields(server=b"node"), id="server-bytes"),
        pytest.param(request_fields(method=None), id="method-none"),
        pytest.param(request_fields(timeout="1"), id="timeout-str"),
        pytest.param(request_fields(tag="z"), id="unknown-tag"),
        pytest.param(request_fields()[:5], id="too-few-fields"),
        pytest.param(["e", MSG_ID, 99, "t", "m", ""], id="error-kind-99"),
        pytest.param(["r"], id="reply-without-msg-id"),
        pytest.param({"msg_id": MSG_ID}, id="map-not-array"),
        pytest.param([], id="empty-array"),
        pytest.param("q", id="bare-string"),
        pytest.param(None, id="nil"),
    ],
)
def test_valid_msgpack_of_wrong_shape_is_refused(fields):
    body = msgspec.msgpack.encode(fields)
    with pytest.raises(ProtocolError):
        wire.decode([HEADER, body], MAX)


def test_request_fields_helper_builds_a_valid_request():
    # So the refusals above come from the broken field, not from the helper.
    body = msgspec.msgpack.encode(request_fields())
    decoded = wire.decode([HEADER, body], MAX)
    assert isinstance(decoded, Request)
    assert decoded.args == {"a": 1}


@pytest.mark.parametrize("size", [0, 1, 15, 17, 32])
@pytest.mark.parametrize(
    "message",
    [
        lambda mid: request(msg_id=mid),
        lambda mid: Reply(mid, None),
        lambda mid: ErrorReply(mid, ErrorKind.REMOTE, "builtins.KeyError", "k"),
        Ack,
    ],
    ids=["request", "reply", "error", "ack"],
)
def test_wrong_msg_id_length(size, message):
    frames = wire.encode(message(b"\x01" * size))
    with pytest.raises(ProtocolError, match=f"{size} bytes"):
        wire.decode(frames, MAX)


def deep_request_body(value: bytes) -> bytes:
    """A Request body built by hand with raw msgpack ``value`` as argument ``x``."""
    enc = msgspec.msgpack.encode
    return b"".join(
        [
            b"\x9c",  # fixarray of 12: the tag and the 11 fields
            enc("q"),
            enc(MSG_ID),
            enc(int(CallKind.CALL)),
            enc("default"),
            enc("compute"),
            enc(None),
            enc(None),
            enc(None),
            enc("add"),
            b"\x81",  # fixmap of 1
            enc("x"),
            value,
            enc({}),
            enc(None),
        ]
    )


def test_hand_built_body_decodes_when_shallow():
    decoded = wire.decode_body(deep_request_body(b"\x91\x91\xc0"), MAX)
    assert decoded == request(args={"x": [[None]]}, context={})


def test_deeply_nested_payload_is_a_protocol_error():
    body = deep_request_body(b"\x91" * 100_000 + b"\xc0")
    with pytest.raises(ProtocolError):
        wire.decode([HEADER, body], MAX)
    # The decoder is still usable afterwards.
    assert wire.decode_body(deep_request_body(b"\xc0"), MAX).args == {"x": None}


def test_deeply_nested_maps_are_a_protocol_error():
    body = deep_request_body(b"\x81\xa1k" * 100_000 + b"\xc0")
    with pytest.raises(ProtocolError):
        wire.decode([HEADER, body], MAX)


# -- encoding errors ---------------------------------------------------------------


def test_unencodable_argument_is_a_type_error_naming_the_problem():
    with pytest.raises(TypeError, match="object") as info:
        wire.encode(request(args={"x": object()}))
    assert "Request" in str(info.value)


def test_unencodable_result_is_a_type_error():
    with pytest.raises(TypeError, match="Reply"):
        wire.encode(Reply(MSG_ID, {"when": object()}))


@pytest.mark.parametrize(
    "value",
    [2**64, -(2**63) - 1, "bad \udcff name"],
    ids=["int-too-big", "int-too-small", "lone-surrogate"],
)
def test_values_msgpack_cannot_hold_are_type_errors(value):
    with pytest.raises(TypeError, match="Request"):
        wire.encode(request(args={"x": value}))


# -- errors to exceptions --------------------------------------------------------------

EXPECTED_EXCEPTION = {
    ErrorKind.REMOTE: RemoteError,
    ErrorKind.NO_SUCH_METHOD: NoSuchMethod,
    ErrorKind.UNSUPPORTED_VERSION: UnsupportedVersion,
    ErrorKind.BAD_REQUEST: RemoteError,
    ErrorKind.NOT_SERVED: NoRespondersError,
    ErrorKind.STOPPING: NoRespondersError,
    ErrorKind.BUSY: ServerBusyError,
}


def test_every_error_kind_has_an_expected_exception():
    assert set(EXPECTED_EXCEPTION) == set(ErrorKind)


@pytest.mark.parametrize("kind", list(ErrorKind))
def test_error_to_exception(kind):
    reply = ErrorReply(MSG_ID, kind, "builtins.KeyError", "'missing'", "Traceback: line 1")
    exc = wire.error_to_exception(reply)
    assert type(exc) is EXPECTED_EXCEPTION[kind]
    assert isinstance(exc, MessagingError)
    assert "'missing'" in str(exc)
    if isinstance(exc, RemoteError):
        assert exc.exc_type == "builtins.KeyError"
        assert exc.value == "'missing'"
        assert exc.traceback == "Traceback: line 1"


@given(error_replies)
def test_error_to_exception_keeps_fields(reply):
    exc = wire.error_to_exception(reply)
    assert isinstance(exc, EXPECTED_EXCEPTION[reply.kind])
    if isinstance(exc, RemoteError):
        assert (exc.exc_type, exc.value, exc.traceback) == (
            reply.exc_type,
            reply.message,
            reply.traceback,
        )
    else:
        assert str(exc) == reply.message


def test_round_trip_keeps_special_floats():
    decoded = wire.decode(wire.encode(Reply(MSG_ID, [math.inf, -math.inf, -0.0])), MAX)
    assert decoded.result == [math.inf, -math.inf, -0.0]
    assert math.copysign(1.0, decoded.result[2]) == -1.0


def test_destination_joins_key_and_server_with_nul():
    assert wire.destination("ex/topic", "node-1") == b"ex/topic\0node-1"
    assert wire.destination("ex/topic", "") == b"ex/topic\0"


def test_split_header_returns_the_destination_after_ours():
    dest = wire.destination("ex/topic", "node-1")
    assert wire.split_header(HEADER + dest) == dest
    assert wire.split_header(HEADER) == b""


@pytest.mark.parametrize(
    ("frame", "named"),
    [
        (b"ZMQA\x07ex/topic\0node-1", "unsupported protocol version 7"),
        (b"GET / HTTP/1.1", "not a zmqactors header"),
        (b"ZMQ", "not a zmqactors header"),
        (b"", "not a zmqactors header"),
    ],
)
def test_split_header_refuses_other_headers_by_name(frame, named):
    with pytest.raises(ProtocolError, match=named):
        wire.split_header(frame)
