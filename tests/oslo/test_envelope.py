"""The oslo envelope's JSON text: byte for byte what oslo's other drivers write."""

from __future__ import annotations

import collections
import datetime as dt
import decimal
import uuid

import pytest
from oslo_serialization import jsonutils

from zmqactors.errors import ProtocolError
from zmqactors.oslo import _envelope

pytestmark = pytest.mark.unit

Point = collections.namedtuple("Point", ["x", "y"])  # noqa: PYI024 - as oslo callers pass them


# Values jsonutils.to_primitive converts (or that json writes itself in a
# particular way): the cached encoder must write each exactly as jsonutils.dumps.
VALUES = [
    {"text": "snow ☃", "none": None, "f": 1.5, "big": 2**70, "nan": float("nan")},
    {"tuple": (1, 2), "point": Point(1, "a"), "set": {3}, "frozen": frozenset({4})},
    {"when": dt.datetime(2026, 12, 7, 1, 2, 3, 456789, tzinfo=dt.UTC), "day": dt.date(2026, 1, 2)},
    {"id": uuid.UUID(int=7), "dec": decimal.Decimal("1.25"), "bytes": b"raw"},
    {1: "int key", None: "none key", 2.5: "float key", False: "bool key"},
]


@pytest.mark.parametrize("value", VALUES)
def test_requests_and_replies_are_written_as_jsonutils_writes_them(value):
    assert _envelope.encode_incoming({"ctxt": value}, value) == jsonutils.dumps(
        {"ctxt": {"ctxt": value}, "message": value}
    )
    assert _envelope.encode_incoming({}, value, 2.5) == jsonutils.dumps(
        {"ctxt": {}, "message": value, "monitor": 2.5}
    )
    assert _envelope.encode_result(value) == jsonutils.dumps({"result": value})


def test_what_json_cannot_carry_raises_as_jsonutils_does():
    loop: dict[str, object] = {}
    loop["self"] = loop
    with pytest.raises(ValueError, match="Circular reference"):
        jsonutils.dumps(loop)
    with pytest.raises(ValueError, match="Circular reference"):
        _envelope.encode_incoming({}, loop)
    with pytest.raises(ValueError, match="Cannot convert"):
        _envelope.encode_result(object())


def test_a_reply_reads_back_as_jsonutils_reads_it():
    text = jsonutils.dumps({"result": {"k": [1, "ü", None]}})
    assert _envelope.decode_reply(text, []) == jsonutils.loads(text)["result"]
    with pytest.raises(ProtocolError, match="the oslo reply is not JSON"):
        _envelope.decode_reply("{nope", [])
    with pytest.raises(ProtocolError, match="must be a JSON string, got bytes"):
        _envelope.decode_reply(b"{}", [])
