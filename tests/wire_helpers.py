"""Wire messages the unit tests build: one `Request` with defaults, changed per test."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from zmqactors import wire
from zmqactors.topics import Target, matchmaker_key
from zmqactors.wire import CallKind, Request

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["make_request", "to_server"]


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


def to_server(frames: Sequence[bytes], target: Target) -> list[bytes]:
    """``[HEADER, body]`` as a client sends it to ``target``'s server: with its destination."""
    header, body = frames
    return [header, wire.destination(matchmaker_key(target), target.server or ""), body]
