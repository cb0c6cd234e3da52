"""A worker: one thread of a transport's shared pool, calling endpoints.

A transport runs one pool of workers for all its servers and notification
listeners (``executor_size`` threads, more if one of its servers asks for
more). A worker owns one inproc DEALER connected to the poller; an empty
message says "idle", and every request it receives is answered with the
reply body (or an empty one for a cast), which also says "idle again". A
request names its server by index; the worker runs that server's `Handler`
from the table the poller keeps. A slow endpoint blocks only its own
worker, never the poller's I/O.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import zmq

from zmqactors.actors.base import SocketActor
from zmqactors.actors.frames import send_frames
from zmqactors.actors.poller import INDEX, TIMER_TICK, unpack_arrival
from zmqactors.net.context import get_context
from zmqactors.net.sockets import inproc_socket

if TYPE_CHECKING:
    from zmqactors.core.handler import Handler

__all__ = ["Worker"]

_IDLE = (b"", b"", b"")


class Worker(SocketActor):
    """Runs the requests its poller hands it through their server's `Handler`."""

    actor_name = "worker"

    def __init__(self, pool_address: str, handlers: dict[int, Handler]) -> None:
        super().__init__()
        self._pool_address = pool_address
        # Written by the poller's thread before it hands out a request for an
        # index; a request for a server removed meanwhile finds none.
        self._table = handlers
        self._sock: zmq.Socket[bytes] | None = None

    def on_start(self) -> None:
        """Connect to the poller and say "idle" (actor thread)."""
        sock = inproc_socket(get_context(), zmq.DEALER)
        sock.connect(self._pool_address)
        self._sock = sock
        # [server index, client, arrival, body], from our poller
        self.watch(sock, self._on_request, frames=4)
        send_frames(sock, _IDLE)

    def _on_request(self, frames: list[bytes]) -> None:
        sock = self._sock
        assert sock is not None  # noqa: S101 - set in on_start
        # An answer deferred by the request before this one goes out now,
        # not after this request, which may be slow.
        self.run_deferred()
        index, client, arrival, body = frames
        reply: bytes | None = None
        try:
            handler = self._table.get(INDEX.unpack(index)[0])
            if handler is None:
                pass  # its server stopped while the request waited
            elif client == TIMER_TICK and not body:
                handler.on_deadline(time.monotonic())
            else:
                reply = handler.handle(body, client, unpack_arrival(arrival))
        finally:
            # Always answer, or the poller would count this worker busy
            # forever; last, so the poller wakes once this thread sleeps.
            self.defer(send_frames, sock, (index, client, reply or b""))

    def close_sockets(self) -> None:
        """Close the DEALER."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None
