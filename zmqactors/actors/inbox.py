"""The polling inbox: pykka's inbox, replaced, so one thread serves messages and sockets.

pykka's inbox is a `queue.Queue`; an actor blocked in it cannot see its
sockets, and one blocked in ``poll()`` cannot see its inbox. `PollingInbox`
replaces the inbox (pykka's ``_create_actor_inbox`` hook): ``put()`` appends to
a deque and rings a `Doorbell` (an eventfd) only while the actor sleeps, and
``get()`` polls the doorbell together with the actor's own sockets, running
their handlers and timers, until an envelope is there.

Other threads reach an actor only through its inbox: pykka's ``tell``/``ask``
(an envelope, run by pykka's actor loop), or a bare message put in the inbox
(``actor_inbox.put``) for those on a call's path, which ``get()`` hands to the
actor's ``deliver`` itself, in order with the envelopes, without pykka's
envelope and loop around each (about 1.5 µs a message). Once the actor
stopped, ``put`` raises ``pykka.ActorDeadError``, and a ``future`` of a
message still queued fails with `TransportClosedError`, as for ``tell``.

The inbox serves its actor through `InboxOwner` (what `SocketActor` in
`zmqactors.actors.base` provides), so it needs no import of the actor base.
Relies on pykka internals (``_create_actor_inbox``, ``Envelope`` and the shape
of its actor loop); setup.cfg pins pykka's minor range for that reason.
"""

from __future__ import annotations

import collections
import threading
from typing import TYPE_CHECKING, Any, Protocol

import pykka
from pykka._envelope import Envelope

from zmqactors.actors.doorbell import Doorbell

if TYPE_CHECKING:
    from collections.abc import Sized

__all__ = ["InboxOwner", "PollingInbox"]

# How many envelopes an actor takes from its inbox before it looks at its
# sockets again, so a busy inbox cannot starve the sockets (or the reverse).
_ENVELOPES_PER_POLL = 32


class InboxOwner(Protocol):
    """What a `PollingInbox` needs from its actor; every method runs in the actor's thread.

    Except `fail_queued`, which a `put` racing the actor's stop may call from its own thread.
    """

    @property
    def _deferred(self) -> Sized:
        """Work queued to run before the actor next sleeps (see ``SocketActor.defer``)."""

    def run_deferred(self) -> None:
        """Run the deferred work, in order."""

    def deliver(self, message: Any) -> None:
        """Handle a bare message put in the inbox."""

    def serve_once(self, timeout_ms: float | None) -> None:
        """Poll the sockets and the doorbell once (``None``: until something is ready)."""

    def fail_queued(self, items: list[Any]) -> None:
        """Fail what was queued when the actor stopped: futures, asks."""


class PollingInbox:
    """pykka's inbox, replaced: a deque plus a doorbell, polled with the actor's sockets.

    Safe for a signal handler that runs in the middle of a `put` (Python runs
    handlers in the main thread between bytecodes) and puts again, or stops
    the actor and waits for it, as ``Transport.close()`` in a SIGTERM handler
    does: the lock is re-entrant and held for a few bytecodes only (the
    doorbell rings after it), and the actor thread never waits for it.
    """

    def __init__(self) -> None:
        self._queue: collections.deque[Any] = collections.deque()
        # Re-entrant: a signal handler may put while its thread is inside put().
        self._lock = threading.RLock()
        self._closed = False
        self._sleeping = False
        self._since_poll = 0
        # Putters that decided to ring and have not yet: the doorbell's
        # descriptor stays open (its number cannot be reused) while any does.
        self._ringing = 0
        self._bell_closing = False
        self.doorbell = Doorbell()
        self._actor: InboxOwner | None = None

    def bind(self, actor: InboxOwner) -> None:
        """Attach the actor whose sockets ``get()`` serves (creator thread)."""
        self._actor = actor

    def put(self, envelope: Any, /) -> None:
        """Queue an envelope (or a bare message); any thread.

        Raises ``pykka.ActorDeadError`` once closed. A message queued while
        the actor closed is failed like those still queued at its stop.
        """
        with self._lock:
            closed = self._closed
            if not closed:
                self._queue.append(envelope)
                # Ring only when the actor sleeps in poll(): it sets _sleeping
                # before its last look at the deque, so an append after that
                # look sees True.
                ring = self._sleeping
                if ring:
                    self._ringing += 1
                    # One ring wakes it: the puts behind this one need none.
                    self._sleeping = False
        if closed:
            self._after_close()
            msg = "actor stopped"
            raise pykka.ActorDeadError(msg)
        if ring:
            try:
                self.doorbell.ring()
            finally:
                with self._lock:
                    self._ringing -= 1
        if self._closed:
            # The actor closed while this put ran: what it appended may have
            # come after close() took the queue.
            self._after_close()

    def awake(self) -> None:
        """The actor's poll returned: puts from now on need not ring (actor thread).

        Safe because `get` looks at the queue again before it next sleeps.
        """
        self._sleeping = False

    def empty(self) -> bool:
        """Whether no envelope is queued."""
        return not self._queue

    def get(self) -> Any:
        """Next envelope; serves sockets and timers while there is none. Actor thread only."""
        actor = self._actor
        assert actor is not None  # noqa: S101 - bound by its actor's __init__
        queue = self._queue
        while True:
            if self._closed:
                return self._get_closed(actor)
            if queue and self._since_poll < _ENVELOPES_PER_POLL:
                self._since_poll += 1
                item = queue.popleft()
                if type(item) is Envelope:
                    if actor._deferred:  # noqa: SLF001 - the inbox is part of its actor
                        actor.run_deferred()
                    return item
                actor.deliver(item)  # a bare message (see the module docstring)
                continue
            self._since_poll = 0
            if queue:
                actor.serve_once(0)
                continue
            if actor._deferred:  # noqa: SLF001 - the inbox is part of its actor
                # Before saying it sleeps: what this wakes may answer at once,
                # and that answer needs no ring while this thread is awake.
                actor.run_deferred()
                continue
            self._sleeping = True
            try:
                if not queue:
                    actor.serve_once(None)
            finally:
                self._sleeping = False

    def _get_closed(self, actor: InboxOwner) -> Any:
        # Only pykka's teardown asks after the stop, when it saw an item
        # that a racing put() may have taken back meanwhile.
        queue = self._queue
        while True:
            try:
                item = queue.popleft()
            except IndexError:
                return Envelope(None)
            if type(item) is Envelope:
                return item
            actor.fail_queued([item])

    def close(self) -> list[Any]:
        """Refuse further puts and return what was still queued (actor thread).

        Takes no lock (a signal handler waiting for this actor to stop may
        hold it); a put that appends after this is failed by that put.
        """
        self._closed = True
        return self._drain()

    def _drain(self) -> list[Any]:
        queue = self._queue
        taken = []
        while True:
            try:
                taken.append(queue.popleft())  # atomic: each item goes to one drainer
            except IndexError:
                return taken

    def _after_close(self) -> None:
        """A put met a closed inbox: fail what it left behind, close the doorbell if due."""
        left = self._drain()
        if left and self._actor is not None:
            self._actor.fail_queued(left)
        if self._bell_closing:
            self._close_bell_if_idle()

    def close_doorbell(self) -> None:
        """Close the doorbell once no `put` can ring it any more (actor thread, after close)."""
        self._bell_closing = True
        self._close_bell_if_idle()

    def _close_bell_if_idle(self) -> None:
        # Never wait for the lock: whoever holds it looks again when done.
        if not self._lock.acquire(blocking=False):
            return
        try:
            if not self._ringing:
                self.doorbell.close()
        finally:
            self._lock.release()
