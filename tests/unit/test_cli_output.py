"""The command line's one escaping helper: what it escapes, what it keeps, in text and JSON."""

import json

import pytest

from zmqactors.cli._output import escape, to_json

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("\x1b[2J", "\\x1b[2J"),  # C0: ESC
        ("a\rb\tc\x00", "a\\x0db\\x09c\\x00"),  # carriage return overwrites a line
        ("\x7f", "\\x7f"),  # DEL
        ("\x9b31m", "\\x9b31m"),  # C1: CSI, ESC [ in one character
        ("\x85", "\\x85"),  # C1: next line
        ("abc\u202edef", "abc\\u202edef"),  # right-to-left override
        ("zero\u200bwidth\ufeff", "zero\\u200bwidth\\ufeff"),
        ("line\u2028sep", "line\\u2028sep"),
        ("héllo wörld ✓ 東京", "héllo wörld ✓ 東京"),  # printable text stays as it is
    ],
)
def test_escape_shows_controls_and_keeps_printable_text(raw, shown):
    assert escape(raw) == shown
    # Escaping twice changes nothing more: the result has no controls left.
    assert escape(shown) == shown


def test_a_newline_is_kept_only_where_lines_are_legitimate():
    assert escape("one\ntwo") == "one\\x0atwo"
    assert escape("one\ntwo\x1b", newlines=True) == "one\ntwo\\x1b"
    assert escape("carriage\r\n", newlines=True) == "carriage\\x0d\n"


def test_escape_takes_any_object():
    assert escape(ValueError("\x1b")) == "\\x1b"


def test_to_json_escapes_and_parses_back_to_the_same_value():
    value = {"event_type": "\x1b]0;t\x07", "payload": ["\x9b2J", "\u202e", "ok ✓"], "n": 1}
    line = to_json(value)
    assert line.isprintable()
    assert "\\u009b2J" in line
    assert "\\u202e" in line
    assert "ok ✓" in line
    assert json.loads(line) == value


def test_to_json_shows_bytes_as_base64():
    assert to_json({"b": b"\x1b\x00"}) == '{"b": "GwA="}'
