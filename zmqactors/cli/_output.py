r"""What the command line prints, made safe for a terminal.

Server names, addresses, payloads, event types and remote error messages come
from the network (or from a matchmaker anyone with write access can fill):
printed raw, an escape sequence in them could clear the screen, retitle the
window, hide text or fake the lines around it. Everything the command line
prints goes through `escape` (text) or `to_json` (JSON), which show control
characters as escapes instead:

- C0 controls (newline and tab included, unless a caller says a newline is
  legitimate there), DEL and the C1 controls (``\x9b`` starts a sequence as
  ``\x1b[`` does);
- the Unicode characters that reorder or hide text: bidirectional overrides
  and isolates, zero-width characters, line and paragraph separators, the BOM.

Text shows them as ``\x1b`` or ``\u202e``; JSON as ``\u001b``, which parses
back to the same string.
"""

from __future__ import annotations

import base64
import json
import re
import sys

__all__ = ["error", "escape", "print_json", "print_text", "to_json"]

_FORMAT_CHARACTERS = "\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff"
# Newline is the one control a caller may allow: a traceback has lines.
_UNSAFE_IN_LINES = re.compile(f"[\x00-\x09\x0b-\x1f\x7f-\x9f{_FORMAT_CHARACTERS}]")
_UNSAFE = re.compile(f"[\x00-\x1f\x7f-\x9f{_FORMAT_CHARACTERS}]")


def _text_escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"  # noqa: PLR2004 - one byte


def _json_escape(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def escape(text: object, *, newlines: bool = False) -> str:
    """``str(text)`` with control and invisible formatting characters shown as escapes.

    With ``newlines``, a newline is kept (for text that has lines, a traceback).
    """
    pattern = _UNSAFE_IN_LINES if newlines else _UNSAFE
    return pattern.sub(_text_escape, str(text))


def _jsonable(value: object) -> object:
    # What msgpack may decode but JSON cannot hold: bytes, shown as base64
    # like msgspec does; anything else by its repr rather than a crash.
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return repr(value)


def to_json(value: object) -> str:
    r"""``value`` as one line of JSON (bytes as base64), safe for a terminal.

    ``json.dumps`` escapes C0 controls already; DEL, C1 and the formatting
    characters become ``\uXXXX`` too. They can only stand inside JSON strings,
    where that escape means the same character.
    """
    return _UNSAFE.sub(_json_escape, json.dumps(value, ensure_ascii=False, default=_jsonable))


def print_json(value: object) -> None:
    """Print ``value`` as one line of JSON on stdout (see `to_json`)."""
    print(to_json(value), flush=True)


def print_text(text: str) -> None:
    """Print ``text`` on stdout, escaped (see `escape`); its newlines are kept."""
    print(escape(text, newlines=True), flush=True)


def error(text: str, *, newlines: bool = False) -> None:
    """Print a message on stderr, escaped (see `escape`); ``newlines`` keeps its lines."""
    print(escape(text, newlines=newlines), file=sys.stderr, flush=True)
