"""A worker: one thread of a server's executor, calling endpoints.

Each `RPCServer` (and `NotificationListener`) runs ``executor_size``
workers. A worker owns one inproc DEALER connected to the poller's
socket for its server; an empty message says
"idle", and every request it receives is answered with the reply body (or an
empty one for a cast), which also says "idle again". A slow endpoint blocks
only its own worker, never the poller's I/O.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import zmq

from zmqactors.actors.base import SocketActor
from zmqactors.actors.frames import send_frames
from zmqactors.net.context import get_context
from zmqactors.net.sockets import inproc_socket

if TYPE_CHECKING:
    from zmqactors.core.handler import Handler

__all__ = ["Worker"]

_IDLE = (b"", b"")


class Worker(SocketActor):
    """Runs requests its poller hands it through the server's `Handler`."""

    actor_name = "worker"

    def __init__(self, backend_address: str, dispatcher: Handler) -> None:
        super().__init__()
        self._backend_address = backend_address
        self._dispatcher = dispatcher
        self._sock: zmq.Socket[bytes] | None = None

    def on_start(self) -> None:
        """Connect to the poller and say "idle" (actor thread)."""
        sock = inproc_socket(get_context(), zmq.DEALER)
        sock.connect(self._backend_address)
        self._sock = sock
        self.watch(sock, self._on_request, frames=2)  # [client, body], from our poller
        send_frames(sock, _IDLE)

    def _on_request(self, frames: list[bytes]) -> None:
        sock = self._sock
        assert sock is not None  # noqa: S101 - set in on_start
        # An answer deferred by the request before this one goes out now,
        # not after this request, which may be slow.
        self.run_deferred()
        reply: bytes | None = None
        client = b""
        try:
            client, body = frames
            reply = self._dispatcher.handle(body, client)
        finally:
            # Always answer, or the poller would count this worker busy
            # forever; last, so the poller wakes once this thread sleeps.
            self.defer(send_frames, sock, (client, reply) if reply else _IDLE)

    def next_deadline(self) -> float | None:
        """The handler's next timer."""
        return self._dispatcher.next_deadline()

    def on_deadline(self, now: float) -> None:
        """Run the handler's timers."""
        self._dispatcher.on_deadline(now)

    def close_sockets(self) -> None:
        """Close the DEALER."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None
