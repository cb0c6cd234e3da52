"""The wire protocol, sans-IO: immutable messages to ZeroMQ frames and back.

This module imports neither zmq nor pykka (a unit test checks it): it turns
message objects into a list of frames and frames into message objects, and
nothing else. A request or notification (client to server) is three frames,
everything a server sends back two::

    [HEADER, destination, body]      client -> server
    [HEADER, body]                   server -> client

``destination`` names the server of the receiving transport the message is
for (`destination`): every server of a transport shares one socket, so the
poller reads it to pick the server without decoding the body.
``HEADER`` is ``b"ZMQA"`` plus one version byte, so a peer speaking another
version is told so by name instead of failing to decode. ``body`` is a
msgpack-encoded tagged union of the message types below.

Decoding validates every field's type, bounds the size of what it accepts and
raises `ProtocolError` for anything else; it never evaluates or unpickles.
"""

from __future__ import annotations

import collections
import enum
import os
from typing import TYPE_CHECKING, Any, ClassVar, Final

import msgspec

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
    """The destination frame of a message for server ``server`` registered under ``key``.

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


def decode_body(body: bytes, max_size: int) -> Message:
    """Decode one message body, validating every field.

    Raises `ProtocolError` if ``body`` is larger than ``max_size`` bytes, is not
    a valid message, or has a message id of the wrong size.
    """
    if len(body) > max_size:
        msg = f"message of {len(body)} bytes exceeds the limit of {max_size}"
        raise ProtocolError(msg)
    try:
        message = _decoder.decode(body)
    except (msgspec.DecodeError, RecursionError, ValueError, TypeError) as exc:
        msg = f"malformed message: {exc}"
        raise ProtocolError(msg) from None
    if len(message.msg_id) != MSG_ID_SIZE:
        msg = f"message id of {len(message.msg_id)} bytes, expected {MSG_ID_SIZE}"
        raise ProtocolError(msg)
    return message


def decode(frames: Sequence[bytes], max_size: int) -> Message:
    """Decode a whole message (``[HEADER, body]``); raises `ProtocolError`."""
    if len(frames) != 2:  # noqa: PLR2004 - the protocol has exactly two frames
        msg = f"expected 2 frames, got {len(frames)}"
        raise ProtocolError(msg)
    check_header(frames[0])
    return decode_body(frames[1], max_size)


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
