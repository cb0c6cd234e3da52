"""What a message body may decode to (issue #19, item 8): objects, nesting, string bytes.

The scan that enforces the limits is checked against a reference count of
the decoded value (hypothesis), at its edges (the limit passes, one less is
refused naming the option), and on the bombs it exists for.
"""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.wire_helpers import make_request, msgpack_values
from zmqactors import wire
from zmqactors._limits import SCAN_THRESHOLD
from zmqactors.errors import ProtocolError
from zmqactors.options import Settings
from zmqactors.wire import DecodeLimits

pytestmark = pytest.mark.unit

BIG = 1 << 30


def body_of(**args: Any) -> bytes:
    return wire.encode(make_request(args=args))[1]


def shape(value: object, depth: int = 0) -> tuple[int, int, int]:
    """Reference count of a decoded value: (objects, deepest nesting, string+bytes length)."""
    if isinstance(value, dict):
        items, deepest, size = 1, depth + 1, 0
        for key, item in value.items():
            for part in (key, item):
                i, d, s = shape(part, depth + 1)
                items, deepest, size = items + i, max(deepest, d), size + s
        return items, deepest, size
    if isinstance(value, list):
        items, deepest, size = 1, depth + 1, 0
        for item in value:
            i, d, s = shape(item, depth + 1)
            items, deepest, size = items + i, max(deepest, d), size + s
        return items, deepest, size
    if isinstance(value, str):
        return 1, depth, len(value.encode())
    if isinstance(value, bytes):
        return 1, depth, len(value)
    return 1, depth, 0


# Long strings and byte strings, so that bodies reach the scan's threshold.
values = msgpack_values(max_text=300, max_binary=70_000, max_items=20, max_leaves=60)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.text(max_size=8), values, max_size=6))
def test_the_scan_counts_what_the_decoder_builds(args):
    body = body_of(**args)
    items, depth, size = shape(msgspec.msgpack.decode(body))
    size = max(size, 1)
    exact = DecodeLimits(BIG, items, depth, size)
    assert wire.decode_body(body, exact).args == args
    # One less of each is refused, naming the option (the body is always
    # longer than the limits, so it is scanned).
    for changed, option in (
        (DecodeLimits(BIG, items - 1, depth, size), "max_decoded_items"),
        (DecodeLimits(BIG, items, depth - 1, size), "max_decoded_depth"),
    ):
        with pytest.raises(ProtocolError, match=option):
            wire.decode_body(body, changed)
    if size > 1:
        with pytest.raises(ProtocolError, match="max_decoded_bytes"):
            wire.decode_body(body, DecodeLimits(BIG, items, depth, size - 1))


def test_a_megabyte_of_empty_maps_is_refused_by_the_default_limits():
    bomb = body_of(x=[{}] * (1 << 20))
    assert len(bomb) < 4 * 1024 * 1024  # within the frame limit: only the scan stops it
    with pytest.raises(ProtocolError, match=r"more than 262144 objects \(max_decoded_items\)"):
        wire.decode_body(bomb, Settings().decode_limits)
    # The int form (a frame limit alone) gets the same default limits.
    with pytest.raises(ProtocolError, match="max_decoded_items"):
        wire.decode_body(bomb, 4 * 1024 * 1024)


def test_many_small_containers_are_refused_once_their_sum_passes_the_limit():
    bomb = body_of(x=[[{}] * 10] * 100_000)
    with pytest.raises(ProtocolError, match="max_decoded_items"):
        wire.decode_body(bomb, DecodeLimits())


def test_a_long_scan_of_small_objects_lets_other_threads_run(monkeypatch):
    # The scan yields the processor (and so the GIL) every slice of the body
    # it reads, so a bomb does not stall the process's other threads.
    yields: list[int] = []
    monkeypatch.setattr(wire, "_yield_cpu", lambda: yields.append(1))
    bomb = body_of(x=[[{}] * 10] * 100_000)
    with pytest.raises(ProtocolError, match="max_decoded_items"):
        wire.decode_body(bomb, DecodeLimits())
    # Refused after reading some 180 KiB of one-byte objects: a yield per slice.
    assert len(yields) >= 150_000 // wire._SCAN_SLICE
    # One long string is one object: read in one step, no yield on its way.
    yields.clear()
    assert wire.decode_body(body_of(s=b"x" * 1_000_000), DecodeLimits())
    assert len(yields) <= 1


def test_deep_nesting_in_a_long_body_is_refused():
    nested: object = None
    for _ in range(100):
        nested = [nested]
    body = body_of(deep=nested, pad=b"x" * SCAN_THRESHOLD)
    with pytest.raises(ProtocolError, match=r"deeper than 64 levels \(max_decoded_depth\)"):
        wire.decode_body(body, DecodeLimits())
    assert wire.decode_body(body, DecodeLimits(max_depth=103)).args["deep"] == nested


def test_strings_beyond_the_byte_limit_are_refused():
    body = body_of(a="x" * 40_000, b=b"y" * 40_000)
    assert wire.decode_body(body, DecodeLimits(max_bytes=80_100)).args["b"] == b"y" * 40_000
    with pytest.raises(ProtocolError, match=r"more than 79999 bytes .*\(max_decoded_bytes\)"):
        wire.decode_body(body, DecodeLimits(max_bytes=79_999))


def test_extension_values_count_as_bytes():
    ext = msgspec.msgpack.Ext(1, b"z" * 50_000)
    body = body_of(e=ext)
    # The body's other strings and its message id take a few dozen bytes more.
    with pytest.raises(ProtocolError, match="max_decoded_bytes"):
        wire.decode_body(body, DecodeLimits(max_bytes=50_000))
    assert wire.decode_body(body, DecodeLimits(max_bytes=50_100)).args["e"] == ext


def test_a_declared_count_beyond_the_limit_is_refused_before_it_is_read():
    # An array32 header claiming four billion entries, and nothing after it.
    head = body_of(pad=b"p" * SCAN_THRESHOLD)
    body = head[:-1] + b"\xdd\xff\xff\xff\xff"
    with pytest.raises(ProtocolError, match="max_decoded_items"):
        wire.decode_body(body, DecodeLimits())


@pytest.mark.parametrize(
    "tail",
    [b"\xdb\x00\x00", b"\xc1", b"\x92\x01"],
    ids=["cut length", "reserved byte", "cut array"],
)
def test_malformed_long_bodies_are_protocol_errors(tail):
    body = body_of(pad=b"p" * SCAN_THRESHOLD)[:-1] + tail
    with pytest.raises(ProtocolError, match="malformed"):
        wire.decode_body(body, DecodeLimits())


def test_a_short_body_is_not_scanned_but_still_bounded_by_its_size():
    body = body_of(x=[{}] * 100)
    assert len(body) < DecodeLimits().scan_above
    assert wire.decode_body(body, DecodeLimits(max_items=200)).args == {"x": [{}] * 100}
    # A limit below the body's length makes it scanned, and refused.
    with pytest.raises(ProtocolError, match="max_decoded_items"):
        wire.decode_body(body, DecodeLimits(max_items=50))


def test_the_frame_limit_still_comes_first():
    body = body_of(x=b"x" * 2000)
    with pytest.raises(ProtocolError, match=r"exceeds the limit of 1024 \(max_message_size\)"):
        wire.decode_body(body, DecodeLimits(max_size=1024))
    with pytest.raises(ProtocolError, match=r"exceeds the limit of 1024 \(max_message_size\)"):
        wire.decode_body(body, 1024)


def test_scan_above_is_never_above_a_limit_it_stands_for():
    limits = DecodeLimits(max_size=5000, max_items=100, max_bytes=3000)
    assert limits.scan_above == 100
    assert DecodeLimits().scan_above == SCAN_THRESHOLD


@pytest.mark.parametrize("bad", [0, -1, True, 1.5, "8"])
def test_limits_must_be_positive_integers(bad):
    with pytest.raises(ValueError, match=r"DecodeLimits.max_depth must be a positive integer"):
        DecodeLimits(max_depth=bad)


def test_settings_carry_the_limits():
    settings_ = Settings(max_decoded_items=1000, max_decoded_depth=8, max_decoded_bytes=4096)
    assert settings_.decode_limits == DecodeLimits(4 * 1024 * 1024, 1000, 8, 4096)
    assert Settings().decode_limits == DecodeLimits()
