"""A worker: one thread of a transport's shared pool, calling endpoints.

A transport runs one pool of workers for all its servers and notification
listeners (``executor_size`` threads, more if one of its servers asks for
more). Poller and worker hand each other messages through their inboxes (a
deque and a doorbell, `zmqactors.actors.inbox`), not through inproc
sockets: one wake carries every message queued meanwhile, and a request
costs a put instead of nine ZeroMQ frame operations, each of which lets go
of the GIL. A worker announces itself with `WorkerReady`; every `Run` it
gets is answered with a `Done` carrying the reply body (empty for a cast),
which also says "idle again". A request names its server by index; the
worker runs that server's `Handler` from the table the poller keeps. A slow
endpoint blocks only its own worker, never the poller's I/O. A worker owns
no socket.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import pykka

from zmqactors.actors.base import SocketActor
from zmqactors.actors.messages import Done, WorkerReady

if TYPE_CHECKING:
    from zmqactors.actors.inbox import PollingInbox
    from zmqactors.actors.messages import WorkerMessage
    from zmqactors.core.handler import Handler

__all__ = ["TIMER_TICK", "Worker"]

# A request with this client and an empty body asks the worker to run its
# server's timers (`Handler.on_deadline`): ROUTER routing ids are never empty.
TIMER_TICK = b""


class Worker(SocketActor):
    """Runs the requests its poller hands it through their server's `Handler`."""

    actor_name = "worker"

    def __init__(self, poller: PollingInbox, handlers: dict[int, Handler], name: bytes) -> None:
        super().__init__()
        self._to_poller = poller
        # Written by the poller's thread before it hands out a request for an
        # index; a request for a server removed meanwhile finds none.
        self._table = handlers
        self._name = name

    def on_start(self) -> None:
        """Tell the poller this worker is idle (actor thread)."""
        self._tell_poller(WorkerReady(self._name, self.inbox))

    def on_receive(self, message: WorkerMessage) -> None:
        """Run one request (actor thread)."""
        # An answer deferred by the request before this one goes out now,
        # not after this request, which may be slow.
        self.run_deferred()
        index = message.index
        client = message.client
        reply: bytes | None = None
        try:
            handler = self._table.get(index)
            if handler is None:
                pass  # its server stopped while the request waited
            elif client == TIMER_TICK and not message.body:
                handler.on_deadline(time.monotonic())
            else:
                reply = handler.handle(message.body, client, message.arrival)
        finally:
            # Always answer, or the poller would count this worker busy
            # forever; last, so the poller wakes once this thread sleeps.
            self.defer(self._tell_poller, Done(self._name, index, client, reply or b""))

    def _tell_poller(self, message: Done | WorkerReady) -> None:
        try:  # noqa: SIM105 - contextlib.suppress costs more, per request
            self._to_poller.put(message)
        except pykka.ActorDeadError:
            pass  # the transport is closing: nobody waits for this answer any more
