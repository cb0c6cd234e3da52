"""What the oslo.messaging driver puts inside zmqactors wire messages.

oslo hands the driver a request context dict (oslo's ``ctxt``) and a
message dict produced by the application's serializer. Both travel as one JSON text, written with
``oslo_serialization.jsonutils`` as every other oslo.messaging driver
(RabbitMQ, Kafka, AMQP 1.0) writes them. So a service that switches to
``zmq://`` sees exactly the values it saw before: JSON types come back
unchanged, and anything else is converted by ``jsonutils.to_primitive`` as
before (tuples become lists, datetimes strings, ...). zmqactors' own msgpack
encoding would convert some of these differently (datetimes to timestamps,
integer dict keys kept), which a service written against RabbitMQ does not
expect.

The JSON text goes in one field of the zmqactors message: a `Request`'s
``args`` under `ARGS_KEY` (``method``, ``exchange``, ``topic`` and ``server``
are filled in too, for routing checks and logs), a `Reply`'s ``result``, a
`Notification`'s ``payload``. The envelope:

- request: ``{"ctxt": {...}, "message": {...}, "monitor": seconds or null}``;
  ``monitor`` is the caller's ``call_monitor_timeout`` (the server heartbeats
  every half of it while the call runs);
- reply: ``{"result": value}`` or ``{"failure": text}`` where ``text`` is
  ``oslo_messaging._drivers.common.serialize_remote_exception`` output, which
  the caller turns back into an exception with ``deserialize_remote_exception``;
- notification: ``{"ctxt": {...}, "message": {...}}``.
"""

from __future__ import annotations

import json
from typing import Any

from oslo_messaging._drivers import common
from oslo_serialization import jsonutils

from zmqactors.errors import ProtocolError

__all__ = [
    "ARGS_KEY",
    "decode_incoming",
    "decode_reply",
    "encode_failure",
    "encode_incoming",
    "encode_result",
]

ARGS_KEY = "oslo"

# What ``jsonutils.dumps`` writes with, built once: it calls ``json.dumps``
# with ``default=``, which builds a new encoder on every call (about a fifth
# of the cost of writing a 3 KB envelope). Same options, same text; thread-safe.
_ENCODER = json.JSONEncoder(default=jsonutils.to_primitive)


def _dumps(value: Any) -> str:
    text: str = _ENCODER.encode(value)
    return text


def encode_incoming(ctxt: Any, message: Any, monitor: float | None = None) -> str:
    """The JSON text of a request or notification; raises ``TypeError``/``ValueError``.

    Raised when ``ctxt`` or ``message`` cannot be written as JSON even with
    ``jsonutils.to_primitive`` (as RabbitMQ's driver would raise).
    """
    envelope: dict[str, Any] = {"ctxt": ctxt, "message": message}
    if monitor:
        envelope["monitor"] = monitor
    return _dumps(envelope)


def _load_json(text: object, what: str) -> Any:
    """The value of the JSON ``text``; `ProtocolError` naming ``what`` if it is not one."""
    if not isinstance(text, str):
        msg = f"{what} must be a JSON string, got {type(text).__name__}"
        raise ProtocolError(msg)
    try:
        # jsonutils.loads(text) for a str, without its decode step.
        return json.loads(text)
    except ValueError as exc:
        msg = f"{what} is not JSON: {exc}"
        raise ProtocolError(msg) from None


def decode_incoming(text: object) -> tuple[dict[str, Any], dict[str, Any], float | None]:
    """``(ctxt, message, monitor)`` from a request's JSON text; `ProtocolError` if malformed."""
    envelope = _load_json(text, "the oslo envelope")
    if not isinstance(envelope, dict):
        msg = "the oslo envelope must be a JSON object"
        raise ProtocolError(msg)
    ctxt = envelope.get("ctxt")
    message = envelope.get("message")
    monitor = envelope.get("monitor")
    if not isinstance(ctxt, dict) or not isinstance(message, dict):
        msg = "the oslo envelope needs a 'ctxt' object and a 'message' object"
        raise ProtocolError(msg)
    if monitor is not None and (
        isinstance(monitor, bool) or not isinstance(monitor, int | float) or monitor <= 0
    ):
        monitor = None
    return ctxt, message, monitor


def encode_result(result: Any) -> str:
    """The JSON text of a successful reply; raises like `encode_incoming`."""
    return _dumps({"result": result})


def encode_failure(exc_info: Any) -> str:
    """The JSON text of a failed call, from its ``sys.exc_info()`` tuple."""
    return _dumps({"failure": common.serialize_remote_exception(exc_info)})


def decode_reply(text: object, allowed_remote_exmods: list[str]) -> Any:
    """The result of a call, or raise its remote exception.

    The exception is re-raised as its own type when its module is in
    ``allowed_remote_exmods`` (or is ``builtins``), else as oslo's
    ``RemoteError`` (oslo's ``deserialize_remote_exception`` decides).
    Raises `ProtocolError` for a reply that is not a valid envelope.
    """
    envelope = _load_json(text, "the oslo reply")
    if isinstance(envelope, dict):
        if "failure" in envelope:
            raise common.deserialize_remote_exception(envelope["failure"], allowed_remote_exmods)
        if "result" in envelope:
            return envelope["result"]
    msg = "the oslo reply needs a 'result' or a 'failure'"
    raise ProtocolError(msg)
