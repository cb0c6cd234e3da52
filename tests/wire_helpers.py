"""Wire messages the unit tests build: one `Request` with defaults, changed per test."""

from __future__ import annotations

from typing import Any

from zmqactors import wire
from zmqactors.wire import CallKind, Request

__all__ = ["make_request"]


def make_request(method: str = "ping", **changes: Any) -> Request:
    """A call of ``method`` on topic ``compute``, fresh msg_id; ``changes`` override fields."""
    fields: dict[str, Any] = {
        "msg_id": wire.new_msg_id(),
        "kind": CallKind.CALL,
        "exchange": "default",
        "topic": "compute",
        "server": None,
        "namespace": None,
        "version": None,
        "method": method,
        "args": {},
        "context": {},
    }
    fields.update(changes)
    return Request(**fields)
