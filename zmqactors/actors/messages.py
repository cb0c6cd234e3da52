"""The messages actors accept, one closed union per actor.

Each is a frozen `msgspec.Struct` of immutable fields (str, bytes, tuples,
Targets): as immutable as a frozen dataclass, and built in C, which matters on
the call path (a ten-field frozen dataclass cost 4.3 µs to build here, the
Struct 0.2 µs). They never go on the wire. A ``future`` field is the one
handle that is not a value: the caller's `concurrent.futures.Future` (or, for
a blocking call, a lighter `zmqactors.core.waiter.Waiter`), which the
receiving actor resolves directly so the caller wakes with no further hop;
and a ``retry`` callable, the caller's way to resend to another server of
the topic when nothing ran (`zmqactors.transport.runtime.Runtime.call`).
"""

from __future__ import annotations

from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

import msgspec

from zmqactors.core.waiter import Waiter
from zmqactors.topics import Target

if TYPE_CHECKING:
    from collections.abc import Callable  # noqa: TC004

    # Only for type checkers: these Structs are never encoded, so msgspec never
    # resolves their annotations, and importing security here would be circular.
    from zmqactors.core.handler import Handler  # noqa: TC004
    from zmqactors.net.security import ServerCurve  # noqa: TC004

__all__ = [
    "AddServer",
    "Done",
    "DrainServer",
    "Lookup",
    "MatchmakerMessage",
    "PollerMessage",
    "Refresh",
    "Register",
    "RemoveServer",
    "ReplyWaiterMessage",
    "RoutesChanged",
    "Run",
    "SendCall",
    "SendCast",
    "SendReply",
    "Unreachable",
    "Unregister",
    "WorkerMessage",
    "WorkerReady",
]


# -- reply-waiter ---------------------------------------------------------


class SendCall(msgspec.Struct, frozen=True):
    """Send a request and resolve ``future`` with its reply, error or timeout."""

    address: str
    frames: tuple[bytes, bytes]  # [HEADER + destination, body]
    msg_id: bytes
    deadline: float  # time.monotonic()
    target: Target
    method: str
    future: Future[Any] | Waiter
    # With a monitor timeout, the call also fails when the server has sent no
    # reply or heartbeat for that long (the deadline still bounds the whole).
    monitor: float | None = None
    # The server's CURVE public key from its route (None: it serves without CURVE).
    server_key: str | None = None
    # The sender holds a slot of the transport's `SendWindow` for ``address``:
    # the reply-waiter releases it once the message leaves for the socket.
    credited: bool = False
    # For a call to a topic (any server): if it fails where nothing ran (the
    # server refused it as stopping or not served, or the connection was
    # refused before it left), the reply-waiter calls this once with the
    # call, in its own thread, for the same call to another server of the
    # topic (or None).
    retry: Callable[[SendCall], SendCall | None] | None = None


class SendCast(msgspec.Struct, frozen=True):
    """Send a request that expects no reply."""

    address: str
    frames: tuple[bytes, bytes]  # [HEADER + destination, body]
    target: Target
    method: str
    server_key: str | None = None
    credited: bool = False  # as for `SendCall`
    # For a cast to a topic, as for `SendCall`: another server's copy of it, if
    # the connection was refused before it left.
    retry: Callable[[SendCast], SendCast | None] | None = None


ReplyWaiterMessage = SendCall | SendCast


# -- matchmaker -----------------------------------------------------------


class _Registration(msgspec.Struct, frozen=True):
    """The fields of `Register` and `Unregister`: which entry of the backend."""

    key: str
    server: str
    address: str
    server_key: str | None = None


class Register(_Registration, frozen=True):
    """Register (key, server, address, server_key) and keep it alive until unregistered."""


class Unregister(_Registration, frozen=True):
    """Remove a registration at once."""


class Lookup(msgspec.Struct, frozen=True):
    """Look ``key`` up in the backend, update the route cache, answer the routes."""

    key: str


class Refresh(msgspec.Struct, frozen=True):
    """Like `Lookup`, but nobody waits: the cache is updated in the background."""

    key: str


class Unreachable(msgspec.Struct, frozen=True):
    """The server at ``address`` cannot be reached: route around it for a while."""

    address: str


class RoutesChanged(msgspec.Struct, frozen=True):
    """The backend's watch saw these keys change (None: maybe any): look them up again."""

    keys: tuple[str, ...] | None


MatchmakerMessage = Register | Unregister | Lookup | Refresh | Unreachable | RoutesChanged


# -- poller ---------------------------------------------------------------


class AddServer(msgspec.Struct, frozen=True):
    """Serve requests for ``destinations`` (`wire.destination` frames) with ``handler``.

    The first server binds the transport's network socket; every server
    answers the address to advertise, e.g. ``tcp://127.0.0.1:40123``. With
    ``curve``, the socket is a CURVE server (checked by `prepare_server`).
    At most ``executor_size`` of its requests run at once in the shared
    workers; ``timers``: its handler has timers (`Handler.next_deadline`),
    which the poller has a worker run when due. ``handler`` is, like a
    future, a handle rather than a value: the workers run it.
    """

    server_id: str
    target: Target
    destinations: tuple[bytes, ...]
    executor_size: int
    handler: Handler
    timers: bool = False
    curve: ServerCurve | None = None


class DrainServer(msgspec.Struct, frozen=True):
    """Take no new requests for the server; resolve ``future`` once in-flight work is done."""

    server_id: str
    future: Future[None]


class RemoveServer(msgspec.Struct, frozen=True):
    """Close the server's sockets."""

    server_id: str


class SendReply(msgspec.Struct, frozen=True):
    """Send ``body`` (a reply or heartbeat) to ``client`` on the server's network socket.

    For handlers that answer later, from another thread (the oslo.messaging driver).
    """

    server_id: str
    client: bytes
    body: bytes


class WorkerReady(msgspec.Struct, frozen=True):
    """A worker of the pool started: give it requests through ``inbox`` (its `PollingInbox`).

    ``inbox`` is, like a future, a handle rather than a value.
    """

    worker: bytes
    inbox: Any


class Done(msgspec.Struct, frozen=True):
    """A worker answered the `Run` it got first: ``body`` is the reply (empty: none)."""

    worker: bytes
    index: int
    client: bytes
    body: bytes


PollerMessage = AddServer | DrainServer | RemoveServer | SendReply | WorkerReady | Done


# -- worker ---------------------------------------------------------------


class Run(msgspec.Struct, frozen=True):
    """Run a request of the server numbered ``index`` (``client`` empty and no body: its timers).

    ``arrival`` is when the poller read it (``time.monotonic()``): a call
    whose caller has given up meanwhile is dropped unrun.
    """

    index: int
    client: bytes
    arrival: float
    body: bytes


WorkerMessage = Run
