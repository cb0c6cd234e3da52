"""The wire protocol, sans-IO: immutable messages to ZeroMQ frames and back.

This module imports neither zmq nor pykka (a unit test checks it): it turns
message objects into a list of frames and frames into message objects, and
nothing else. Every message is two frames; a request or notification
(client to server) carries its destination after the header, in the same
frame::

    [HEADER + destination, body]     client -> server
    [HEADER, body]                   server -> client

``destination`` names the server of the receiving transport the message is
for (`destination`): every server of a transport shares one socket, so the
poller reads it (`split_header`) to pick the server without decoding the
body. It rides in the header's frame rather than a frame of its own: each
frame is a send and a receive through libzmq, and one fewer makes a raw
request-reply round trip about 3% faster on loopback.
``HEADER`` is ``b"ZMQA"`` plus one version byte, so a peer speaking another
version is told so by name instead of failing to decode. ``body`` is a
msgpack-encoded tagged union of the message types below.

Decoding validates every field's type, bounds the size of what it accepts and
raises `ProtocolError` for anything else; it never evaluates or unpickles.
What a body may decode to is bounded too (`DecodeLimits`): a body longer
than `DecodeLimits.scan_above` is first scanned, at Python speed but
stopping at the first limit it exceeds, for its object count, nesting and
string bytes, so a megabyte of empty maps is refused before it becomes
72 MiB of dicts; a typical small body is decoded at C speed with no scan.
"""

from __future__ import annotations

import collections
import enum
import functools
import os
import struct
import time
from typing import TYPE_CHECKING, Any, ClassVar, Final

import msgspec

from zmqactors._limits import SCAN_THRESHOLD, DecodeLimits
from zmqactors.errors import (
    NoRespondersError,
    NoSuchMethod,
    ProtocolError,
    RemoteError,
    ServerBusyError,
    UnsupportedVersion,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from zmqactors.topics import Target

__all__ = [
    "HEADER",
    "PROTOCOL_VERSION",
    "Ack",
    "CallKind",
    "DecodeLimits",
    "ErrorKind",
    "ErrorReply",
    "Heartbeat",
    "Message",
    "Notification",
    "Reply",
    "Request",
    "check_header",
    "decode",
    "decode_body",
    "destination",
    "encode",
    "error_to_exception",
    "new_msg_id",
    "request_frames",
    "split_header",
]

PROTOCOL_VERSION: Final = 2
_MAGIC: Final = b"ZMQA"
HEADER: Final = _MAGIC + bytes([PROTOCOL_VERSION])
MSG_ID_SIZE: Final = 16
# Message ids drawn from the OS per system call (see _MsgIds).
_ID_BATCH: Final = 256


class CallKind(enum.IntEnum):
    """What a request expects back."""

    CALL = 1  # one reply
    CAST = 2  # nothing
    # An `Ack` once the endpoint has run; the sender retries with the same
    # msg_id until it gets one, and the server runs each msg_id once.
    ACKED_CAST = 3


class ErrorKind(enum.IntEnum):
    """Why a request failed on the server; the client maps each to an exception."""

    REMOTE = 1  # the endpoint raised
    NO_SUCH_METHOD = 2
    UNSUPPORTED_VERSION = 3
    BAD_REQUEST = 4  # the request decoded but its fields are unusable
    NOT_SERVED = 5  # this server does not serve the request's target (stale route)
    STOPPING = 6  # the server is shutting down and takes no new work
    BUSY = 7  # the server's queue for this client (or its total) is full; nothing ran


class Request(msgspec.Struct, frozen=True, tag="q", array_like=True):
    """A call or cast to a target's method with keyword arguments."""

    msg_id: bytes
    kind: CallKind
    exchange: str
    topic: str
    server: str | None
    namespace: str | None
    version: str | None
    method: str
    args: dict[str, Any]
    # The request context: what the endpoint reads with request_context().
    context: dict[str, Any]
    timeout: float | None = None
    # W3C trace context (traceparent, tracestate) of the caller's span, when
    # the caller traces (the `tracing` option); else None.
    trace: dict[str, str] | None = None


class Reply(msgspec.Struct, frozen=True, tag="r", array_like=True):
    """The result of a call."""

    msg_id: bytes
    result: Any


class ErrorReply(msgspec.Struct, frozen=True, tag="e", array_like=True):
    """A call that failed on the server: the exception's type, message and traceback."""

    msg_id: bytes
    kind: ErrorKind
    exc_type: str
    message: str
    traceback: str = ""


class Notification(msgspec.Struct, frozen=True, tag="n", array_like=True):
    """An event published to the listeners of a topic, one copy per pool."""

    msg_id: bytes
    exchange: str
    topic: str
    priority: str
    publisher_id: str
    event_type: str
    payload: Any
    # The request context, as in Request.
    context: dict[str, Any]
    timestamp: float
    # W3C trace context of the publisher's span, as in Request.
    trace: dict[str, str] | None = None


class Heartbeat(msgspec.Struct, frozen=True, tag="h", array_like=True):
    """The server is still working on call ``msg_id``: the caller keeps waiting."""

    msg_id: bytes


class Ack(msgspec.Struct, frozen=True, tag="a", array_like=True):
    """The server ran (or had already run) the acknowledged cast ``msg_id``.

    Added in protocol version 1 without changing it: a peer that predates it
    rejects it as malformed (counted, never fatal), and an acknowledged cast
    to such a server times out.
    """

    msg_id: bytes


Message = Request | Reply | ErrorReply | Notification | Heartbeat | Ack

_encoder = msgspec.msgpack.Encoder()
_decoder: msgspec.msgpack.Decoder[Message] = msgspec.msgpack.Decoder(Message)


def request_frames(
    target: Target,
    kind: CallKind,
    method: str,
    *,
    args: dict[str, Any],
    context: dict[str, Any],
    timeout: float | None,
    msg_id: bytes,
    trace: dict[str, str] | None = None,
) -> tuple[bytes, bytes]:
    """The frames of a `Request` for ``target``'s exchange, topic, server, namespace, version.

    Raises ``TypeError`` like `encode`.
    """
    header, body = encode(
        Request(
            msg_id,
            kind,
            target.exchange_name,
            target.topic,
            target.server,
            target.namespace,
            target.version,
            method,
            args,
            context,
            timeout,
            trace,
        )
    )
    return header, body


class _MsgIds:
    """Message ids: 128 bits from the operating system's CSPRNG each, drawn in batches.

    Unpredictable, so that knowing some ids (a server sees every id sent to
    it) tells nothing about the next ones; a reply is also bound to the
    connection its call went out on (the reply-waiter checks), so an id alone
    answers nothing. ``os.urandom`` per id was a ``getrandom`` system call on
    every call's path that also gives the GIL away (12 µs under load): one
    call fills a batch of 256 ids instead, and ``deque.popleft`` hands them
    out atomically to any thread. Two threads refilling at once each add
    fresh random bytes, which is harmless. A forked child drops the batch it
    inherited, so parent and child never share an id.
    """

    batch: ClassVar[collections.deque[bytes]] = collections.deque()

    @classmethod
    def refill(cls) -> bytes:
        chunk = os.urandom(MSG_ID_SIZE * _ID_BATCH)
        cls.batch.extend(
            [chunk[i : i + MSG_ID_SIZE] for i in range(MSG_ID_SIZE, len(chunk), MSG_ID_SIZE)]
        )
        return chunk[:MSG_ID_SIZE]

    @classmethod
    def reseed(cls) -> None:
        cls.batch = collections.deque()


os.register_at_fork(after_in_child=_MsgIds.reseed)


def new_msg_id() -> bytes:
    """A fresh, unpredictable message id (128 random bits), unique across processes. Any thread."""
    try:
        return _MsgIds.batch.popleft()
    except IndexError:
        return _MsgIds.refill()


def destination(key: str, server: str) -> bytes:
    """The destination of a message for server ``server`` registered under ``key``.

    ``key`` is the matchmaker key the server registered (`zmqactors.topics.keys`)
    and ``server`` the route's server name; names cannot contain NUL.
    """
    return f"{key}\0{server}".encode()


def encode(message: Message) -> list[bytes]:
    """Turn ``message`` into the frames to send.

    Raises ``TypeError`` naming the value when an argument, request context or result
    cannot be encoded (only msgpack types: None, bool, 64-bit int, float,
    valid Unicode str, bytes, lists, tuples and dicts with string keys).
    """
    try:
        return [HEADER, _encoder.encode(message)]
    except (TypeError, ValueError, OverflowError, msgspec.EncodeError) as exc:
        msg = f"cannot send {type(message).__name__}: {exc}"
        raise TypeError(msg) from None


def check_header(frame: bytes) -> None:
    """Raise `ProtocolError` unless ``frame`` is this protocol's header."""
    if frame == HEADER:
        return
    if len(frame) == len(HEADER) and frame.startswith(_MAGIC):
        msg = f"unsupported protocol version {frame[-1]} (this side speaks {PROTOCOL_VERSION})"
        raise ProtocolError(msg)
    msg = f"not a zmqactors header: {bytes(frame[:16])!r}"
    raise ProtocolError(msg)


def split_header(frame: bytes) -> bytes:
    """The destination in a request's first frame (``HEADER + destination``).

    Raises `ProtocolError` unless the frame starts with this protocol's header.
    """
    size = len(HEADER)
    if frame[:size] != HEADER:
        check_header(frame[:size])  # raises, naming another version or a stranger
    return frame[size:]


@functools.lru_cache(maxsize=16)
def _limits_for(max_size: int) -> DecodeLimits:
    return DecodeLimits(max_size=max_size)


def decode_body(body: bytes, limits: DecodeLimits | int) -> Message:
    """Decode one message body, validating every field and bounding what it becomes.

    ``limits`` is a `DecodeLimits` (``Settings.decode_limits``), or just the
    largest body size in bytes, with the default limits on the rest. Raises
    `ProtocolError` if ``body`` exceeds a limit (the message names the
    option), is not a valid message, or has a message id of the wrong size.
    Any thread.
    """
    size = len(body)
    if isinstance(limits, int):
        if size > limits:
            msg = f"message of {size} bytes exceeds the limit of {limits} (max_message_size)"
            raise ProtocolError(msg)
        if size > SCAN_THRESHOLD:
            _check_shape(body, _limits_for(limits))
    elif size > limits.scan_above:
        if size > limits.max_size:
            msg = (
                f"message of {size} bytes exceeds the limit of {limits.max_size} (max_message_size)"
            )
            raise ProtocolError(msg)
        _check_shape(body, limits)
    try:
        message = _decoder.decode(body)
    except (msgspec.DecodeError, RecursionError, ValueError, TypeError) as exc:
        msg = f"malformed message: {exc}"
        raise ProtocolError(msg) from None
    if len(message.msg_id) != MSG_ID_SIZE:
        msg = f"message id of {len(message.msg_id)} bytes, expected {MSG_ID_SIZE}"
        raise ProtocolError(msg)
    return message


# The scan of a long body reads msgpack's type bytes only (the format's
# specification, not a decoder's code): per first byte, how many bytes a
# value of fixed size takes (0: not fixed), and for strings, byte strings
# and extensions how many length bytes follow and how many more header
# bytes precede the payload.
def _fixed_sizes() -> tuple[int, ...]:
    sizes = [0] * 256
    for byte in (*range(0x80), *range(0xE0, 0x100), 0xC0, 0xC2, 0xC3):
        sizes[byte] = 1  # fixint, nil, false, true
    for byte, size in {0xCA: 5, 0xCB: 9, 0xCC: 2, 0xCD: 3, 0xCE: 5, 0xCF: 9}.items():
        sizes[byte] = size  # floats, unsigned ints
    for byte, size in {0xD0: 2, 0xD1: 3, 0xD2: 5, 0xD3: 9}.items():
        sizes[byte] = size  # signed ints
    return tuple(sizes)


_FIXED_SIZES: Final = _fixed_sizes()
# first byte -> (length bytes, header bytes before the payload)
_SIZED: Final[dict[int, tuple[int, int]]] = {
    0xC4: (1, 2), 0xC5: (2, 3), 0xC6: (4, 5),  # bin 8/16/32
    0xD9: (1, 2), 0xDA: (2, 3), 0xDB: (4, 5),  # str 8/16/32
    0xC7: (1, 3), 0xC8: (2, 4), 0xC9: (4, 6),  # ext 8/16/32 (a type byte more)
}  # fmt: skip
# fixext 1/2/4/8/16: payload size (a type byte and the first byte before it)
_FIXEXT: Final = {0xD4: 1, 0xD5: 2, 0xD6: 4, 0xD7: 8, 0xD8: 16}
# first byte -> (count bytes, objects per counted entry): arrays 16/32, maps 16/32
_COUNTED: Final = {0xDC: (2, 1), 0xDD: (4, 1), 0xDE: (2, 2), 0xDF: (4, 2)}
_UINT: Final = {1: struct.Struct(">B").unpack_from, 2: struct.Struct(">H").unpack_from,
                4: struct.Struct(">I").unpack_from}  # fmt: skip


# A scan holds the GIL: a long body of tiny objects (a bomb, refused only
# after max_decoded_items of them, some 30 ms) would stall every other
# thread of the process, a switch interval (5 ms) at each of their turns.
# So every _SCAN_SLICE bytes read (at most that many objects, some 0.1 ms)
# the scan yields the processor, which releases the GIL and lets waiting
# threads run. Measured (`make soak-overload`): the well-behaved client's
# p99 beside the bomb sender went from 8 ms to 3 ms; a slice of 8 KiB
# left 7 ms. The scan costs no more: a yield nobody waits for is a
# system call of a microsecond.
_SCAN_SLICE: Final = 1024
_yield_cpu = getattr(os, "sched_yield", lambda: time.sleep(0))


# One loop on purpose: a function call per object would double the scan's cost.
def _check_shape(body: bytes, limits: DecodeLimits) -> None:  # noqa: C901, PLR0912, PLR0915
    """Raise `ProtocolError` at the first limit of ``limits`` that ``body`` exceeds.

    Counts objects as their containers declare them (so a declared count
    beyond the limit is refused at once, before anything is read of it),
    tracks the nesting and adds up the lengths of strings, byte strings and
    extensions. Malformed input is left to the decoder that follows, except
    where the scan cannot go on (a truncated body, the reserved byte 0xc1).
    """
    data = memoryview(body).cast("B") if not isinstance(body, bytes) else body
    max_items, max_depth, max_bytes = limits.max_items, limits.max_depth, limits.max_bytes
    fixed, sized, counted, uint = _FIXED_SIZES, _SIZED, _COUNTED, _UINT
    items = 1
    strings = 0
    pos = 0
    pause_at = _SCAN_SLICE
    # What is left to read of the container being read (first: the body
    # itself), and of each container around it.
    left = 1
    outer: list[int] = []
    try:
        while True:
            while left:
                left -= 1
                if pos >= pause_at:
                    _yield_cpu()
                    pause_at = pos + _SCAN_SLICE
                byte = data[pos]
                step = fixed[byte]
                if step:
                    pos += step
                    continue
                if 0xA0 <= byte <= 0xBF:  # noqa: PLR2004 - fixstr
                    length = byte & 0x1F
                    pos += 1 + length
                elif byte <= 0x9F or byte in counted:  # noqa: PLR2004 - arrays and maps
                    if byte <= 0x9F:  # noqa: PLR2004 - fixmap, fixarray
                        count = (byte & 0x0F) * 2 if byte < 0x90 else byte & 0x0F  # noqa: PLR2004
                        pos += 1
                    else:
                        width, per = counted[byte]
                        count = uint[width](data, pos + 1)[0] * per
                        pos += 1 + width
                    # This container's depth is one more than those around it.
                    if len(outer) >= max_depth:
                        msg = f"message nests deeper than {max_depth} levels (max_decoded_depth)"
                        raise ProtocolError(msg)
                    if count:
                        items += count
                        if items > max_items:
                            msg = f"message holds more than {max_items} objects (max_decoded_items)"
                            raise ProtocolError(msg)
                        outer.append(left)
                        left = count
                    continue
                elif byte in sized:
                    width, header = sized[byte]
                    length = uint[width](data, pos + 1)[0]
                    pos += header + length
                elif byte in _FIXEXT:
                    length = _FIXEXT[byte]
                    pos += 2 + length
                else:  # 0xc1, reserved
                    msg = f"malformed message: reserved byte 0xc1 at offset {pos}"
                    raise ProtocolError(msg)
                strings += length
                if strings > max_bytes:
                    msg = (
                        f"message holds more than {max_bytes} bytes of strings and binary "
                        "data (max_decoded_bytes)"
                    )
                    raise ProtocolError(msg)
            if not outer:
                return
            left = outer.pop()
    except (IndexError, struct.error):
        msg = f"malformed message: truncated at offset {pos}"
        raise ProtocolError(msg) from None


def decode(frames: Sequence[bytes], limits: DecodeLimits | int) -> Message:
    """Decode a whole message (``[HEADER, body]``) within ``limits`` (see `decode_body`).

    Raises `ProtocolError`.
    """
    if len(frames) != 2:  # noqa: PLR2004 - the protocol has exactly two frames
        msg = f"expected 2 frames, got {len(frames)}"
        raise ProtocolError(msg)
    check_header(frames[0])
    return decode_body(frames[1], limits)


def error_to_exception(reply: ErrorReply) -> Exception:
    """The exception a caller gets for an `ErrorReply`."""
    match reply.kind:
        case ErrorKind.NO_SUCH_METHOD:
            return NoSuchMethod(reply.exc_type, reply.message, reply.traceback)
        case ErrorKind.UNSUPPORTED_VERSION:
            return UnsupportedVersion(reply.exc_type, reply.message, reply.traceback)
        case ErrorKind.NOT_SERVED | ErrorKind.STOPPING:
            return NoRespondersError(reply.message)
        case ErrorKind.BUSY:
            return ServerBusyError(reply.message)
        case ErrorKind.REMOTE | ErrorKind.BAD_REQUEST:
            return RemoteError(reply.exc_type, reply.message, reply.traceback)
