"""Wire messages the unit tests build: one `Request` with defaults, changed per test."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hypothesis import strategies as st

from zmqactors import wire
from zmqactors.topics import Target, matchmaker_key
from zmqactors.wire import CallKind, Request

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["make_request", "msgpack_values", "raw_exchange", "to_server"]


def msgpack_values(
    *, max_text: int = 40, max_binary: int = 40, max_items: int = 5, max_leaves: int = 20
) -> st.SearchStrategy[Any]:
    """Values msgpack carries: scalars, and lists and string-keyed maps of them, nested."""
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**63), max_value=2**64 - 1),
        st.floats(allow_nan=False),
        st.text(max_size=max_text),
        st.binary(max_size=max_binary),
    )
    return st.recursive(
        scalars,
        lambda inner: st.one_of(
            st.lists(inner, max_size=max_items),
            st.dictionaries(st.text(max_size=10), inner, max_size=max_items),
        ),
        max_leaves=max_leaves,
    )


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
    return [header + wire.destination(matchmaker_key(target), target.server or ""), body]


def raw_exchange(
    address: str, frames: Sequence[bytes], *, expect_reply: bool
) -> list[bytes] | None:
    """Send ``frames`` from a raw pyzmq DEALER to ``address``; the reply (None if none expected).

    Past every check of zmqactors' own client. Waits at most 10 s for the
    reply, and as long for the message to leave before the socket closes.
    """
    import zmq  # noqa: PLC0415 - only the tests that talk raw ZeroMQ need it

    context = zmq.Context()
    dealer = context.socket(zmq.DEALER)
    dealer.setsockopt(zmq.LINGER, 10_000)
    dealer.setsockopt(zmq.RCVTIMEO, 10_000)
    try:
        dealer.connect(address)
        dealer.send_multipart(frames)
        return dealer.recv_multipart() if expect_reply else None
    finally:
        dealer.close()
        context.term()
