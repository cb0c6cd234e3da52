"""A listener: one thread of a server's executor, calling endpoints.

Each `RPCServer` runs ``executor_size`` listeners. A listener owns one inproc
DEALER connected to the poller's socket for its server; an empty message says
"idle", and every request it receives is answered with the reply body (or an
empty one for a cast), which also says "idle again". A slow endpoint blocks
only its own listener, never the poller's I/O.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import zmq

from zmqactors.actors.base import SocketActor
from zmqactors.transport.context import get_context
from zmqactors.transport.sockets import inproc_socket

if TYPE_CHECKING:
    from zmqactors.transport.dispatch import Dispatcher

__all__ = ["Listener"]

_IDLE = (b"", b"")


class Listener(SocketActor):
    """Runs requests its poller hands it through the server's `Dispatcher`."""

    actor_name = "listener"

    def __init__(self, backend_address: str, dispatcher: Dispatcher) -> None:
        super().__init__()
        self._backend_address = backend_address
        self._dispatcher = dispatcher
        self._sock: zmq.Socket[bytes] | None = None

    def on_start(self) -> None:
        """Connect to the poller and say "idle" (actor thread)."""
        sock = inproc_socket(get_context(), zmq.DEALER)
        sock.connect(self._backend_address)
        self._sock = sock
        self.watch(sock, self._on_request)
        sock.send_multipart(_IDLE)

    def _on_request(self, frames: list[bytes]) -> None:
        sock = self._sock
        assert sock is not None  # noqa: S101 - set in on_start
        reply: bytes | None = None
        client = b""
        try:
            client, body = frames
            reply = self._dispatcher.handle(body)
        finally:
            # Always answer, or the poller would count this listener busy forever.
            sock.send_multipart((client, reply) if reply else _IDLE)

    def close_sockets(self) -> None:
        """Close the DEALER."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None
