"""How the command line prints: JSON results on stdout, messages on stderr."""

from __future__ import annotations

import base64
import json
import sys

__all__ = ["error", "print_json", "print_text", "to_json"]


def _jsonable(value: object) -> object:
    # What msgpack may decode but JSON cannot hold: bytes, shown as base64
    # like msgspec does; anything else by its repr rather than a crash.
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return repr(value)


def to_json(value: object) -> str:
    """``value`` as one line of JSON (bytes as base64)."""
    return json.dumps(value, ensure_ascii=False, default=_jsonable)


def print_json(value: object) -> None:
    """Print ``value`` as one line of JSON on stdout."""
    print(to_json(value), flush=True)


def print_text(text: str) -> None:
    """Print ``text`` on stdout."""
    print(text, flush=True)


def error(text: str) -> None:
    """Print a message on stderr."""
    print(text, file=sys.stderr, flush=True)
