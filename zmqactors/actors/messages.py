"""The messages actors accept, one closed union per actor.

Each is a frozen dataclass of immutable fields (str, bytes, tuples, Targets).
A ``future`` field is the one handle that is not a value: the caller's
`concurrent.futures.Future`, which the receiving actor resolves directly so
the caller wakes with no further hop.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from concurrent.futures import Future

    from zmqactors.topics import Target
    from zmqactors.transport.security import ServerCurve

__all__ = [
    "AddServer",
    "DrainServer",
    "Lookup",
    "MatchmakerMessage",
    "PollerMessage",
    "Refresh",
    "Register",
    "RemoveServer",
    "ReplyWaiterMessage",
    "SendCall",
    "SendCast",
    "SendReply",
    "Unreachable",
    "Unregister",
]


# -- reply-waiter ---------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class SendCall:
    """Send a request and resolve ``future`` with its reply, error or timeout."""

    address: str
    frames: tuple[bytes, bytes]
    msg_id: bytes
    deadline: float  # time.monotonic()
    target: Target
    method: str
    future: Future[Any]
    # With a monitor timeout, the call also fails when the server has sent no
    # reply or heartbeat for that long (the deadline still bounds the whole).
    monitor: float | None = None
    # The server's CURVE public key from its route (None: it serves without CURVE).
    server_key: str | None = None
    # The sender holds a slot of the transport's `SendWindow` for ``address``:
    # the reply-waiter releases it once the message leaves for the socket.
    credited: bool = False


@dataclasses.dataclass(frozen=True, slots=True)
class SendCast:
    """Send a request that expects no reply."""

    address: str
    frames: tuple[bytes, bytes]
    target: Target
    method: str
    server_key: str | None = None
    credited: bool = False  # as for `SendCall`


ReplyWaiterMessage = SendCall | SendCast


# -- matchmaker -----------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class Register:
    """Register (key, server, address, server_key) and keep it alive until unregistered."""

    key: str
    server: str
    address: str
    server_key: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Unregister:
    """Remove a registration at once."""

    key: str
    server: str
    address: str
    server_key: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Lookup:
    """Look ``key`` up in the backend, update the route cache, answer the routes."""

    key: str


@dataclasses.dataclass(frozen=True, slots=True)
class Refresh:
    """Like `Lookup`, but nobody waits: the cache is updated in the background."""

    key: str


@dataclasses.dataclass(frozen=True, slots=True)
class Unreachable:
    """The server at ``address`` cannot be reached: route around it for a while."""

    address: str


MatchmakerMessage = Register | Unregister | Lookup | Refresh | Unreachable


# -- poller ---------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class AddServer:
    """Bind a server's network socket and its inproc socket to its listeners.

    Answers the address to advertise, e.g. ``tcp://127.0.0.1:40123``. With
    ``curve``, the socket is a CURVE server (checked by `prepare_server`).
    """

    server_id: str
    target: Target
    backend_address: str
    curve: ServerCurve | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class DrainServer:
    """Take no new requests for the server; resolve ``future`` once in-flight work is done."""

    server_id: str
    future: Future[None]


@dataclasses.dataclass(frozen=True, slots=True)
class RemoveServer:
    """Close the server's sockets."""

    server_id: str


@dataclasses.dataclass(frozen=True, slots=True)
class SendReply:
    """Send ``body`` (a reply or heartbeat) to ``client`` on the server's network socket.

    For handlers that answer later, from another thread (the oslo.messaging driver).
    """

    server_id: str
    client: bytes
    body: bytes


PollerMessage = AddServer | DrainServer | RemoveServer | SendReply
