"""The base of every zmqactors actor: a pykka actor that also serves ZeroMQ sockets.

pykka's inbox is a `queue.Queue`; an actor blocked in it cannot see its
sockets, and one blocked in ``poll()`` cannot see its inbox. `PollingInbox`
replaces the inbox (pykka's ``_create_actor_inbox`` hook): ``put()`` appends to
a deque and rings a `Doorbell` (an eventfd) only while the actor sleeps, and
``get()`` polls the doorbell together with the actor's own sockets, running
their handlers and timers, until an envelope is there.

So one thread per actor does everything: the actor's sockets are created in
``on_start``, used by its handlers and closed in ``on_stop``/``on_failure``,
all in the actor's thread. Other threads reach the actor only through its inbox:
pykka's ``tell``/``ask`` (an envelope, run by pykka's actor loop), or a bare
message put in the inbox (``actor_inbox.put``) for those on a call's path,
which ``get()`` hands to `SocketActor.deliver` itself, in order with the
envelopes, without pykka's envelope and loop around each (about 1.5 µs a
message). Once the actor stopped, ``put`` raises ``pykka.ActorDeadError``,
and a ``future`` of a message still queued fails with `TransportClosedError`,
as for ``tell``.

Relies on pykka internals (``_create_actor_inbox`` and the shape of its actor
loop); setup.cfg pins pykka's minor range for that reason.
"""

from __future__ import annotations

import collections
import contextlib
import math
import os
import threading
import time
import weakref
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, ClassVar

import pykka
import structlog
import zmq
from pykka._envelope import Envelope
from pykka.messages import _ActorStop

from zmqactors.actors.frames import readable, recv_exactly, recv_frames
from zmqactors.core.waiter import Waiter, settle
from zmqactors.errors import TransportClosedError
from zmqactors.net.context import on_fork_child

__all__ = ["Doorbell", "PollingInbox", "SocketActor"]

_log = structlog.get_logger("zmqactors.actors")

# How many envelopes an actor takes from its inbox before it looks at its
# sockets again, so a busy inbox cannot starve the sockets (or the reverse).
_ENVELOPES_PER_POLL = 32
_FRAMES_PER_SOCKET = 256
# A send on a watched socket gives up after this long (zmq.Again): a DEALER
# whose peer is gone (a poller closed under a listener finishing a request)
# would otherwise block its actor thread forever, deaf to its stop message.
_SEND_TIMEOUT_MS = 1000
# poll() reports plain ints; masking them with zmq's enum members costs an enum operation each.
_POLLIN = int(zmq.POLLIN)
_POLLOUT = int(zmq.POLLOUT)


class Doorbell:
    """A file descriptor that wakes a thread blocked in ``zmq.Poller.poll``.

    Any thread may ``ring()``; only the owning actor clears it. An eventfd where
    the OS has one, else a pipe.
    """

    _live: ClassVar[weakref.WeakSet[Doorbell]] = weakref.WeakSet()

    def __init__(self) -> None:
        self._pid = os.getpid()
        if hasattr(os, "eventfd"):
            fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
            self._rfd, self._wfd = fd, fd
        else:  # pragma: no cover - non-Linux
            self._rfd, self._wfd = os.pipe()
            for end in (self._rfd, self._wfd):
                os.set_blocking(end, False)
        self._closed = False
        Doorbell._live.add(self)

    def fileno(self) -> int:
        """The descriptor to poll for readability."""
        return self._rfd

    def ring(self) -> None:
        """Wake the sleeper. Any thread; never blocks."""
        with contextlib.suppress(BlockingIOError, OSError):
            os.write(self._wfd, b"\x01\x00\x00\x00\x00\x00\x00\x00")

    def clear(self) -> None:
        """Consume the rings so far. Owner thread only."""
        with contextlib.suppress(BlockingIOError, OSError):
            os.read(self._rfd, 4096)

    def close(self) -> None:
        """Close the descriptors; idempotent."""
        if self._closed:
            return
        self._closed = True
        Doorbell._live.discard(self)
        with contextlib.suppress(OSError):
            os.close(self._rfd)
        if self._wfd != self._rfd:
            with contextlib.suppress(OSError):
                os.close(self._wfd)

    @classmethod
    def _close_inherited(cls) -> None:
        # A child closes the parent's doorbells: closing a descriptor in the
        # child never affects the parent, and leaving them open would leak one
        # per actor per fork and let the child ring the parent's actors.
        for bell in list(cls._live):
            bell.close()


on_fork_child(Doorbell._close_inherited)  # noqa: SLF001 - the class's own hook


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
        self._actor: SocketActor | None = None

    def bind(self, actor: SocketActor) -> None:
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

    def empty(self) -> bool:
        """Whether no envelope is queued."""
        return not self._queue

    def get(self) -> Any:
        """Next envelope; serves sockets and timers while there is none. Actor thread only."""
        actor = self._actor
        assert actor is not None  # noqa: S101 - bound in SocketActor.__init__
        queue = self._queue
        while True:
            if self._closed:
                # Only pykka's teardown asks after the stop, when it saw an
                # item that a racing put() may have taken back meanwhile.
                try:
                    item = queue.popleft()
                except IndexError:
                    return Envelope(None)
                if type(item) is Envelope:
                    return item
                actor.fail_queued([item])
                continue
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
            self._sleeping = True
            try:
                if not queue:
                    actor.serve_once(None)
            finally:
                self._sleeping = False

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


Handler = Callable[[list[bytes]], None]


class SocketActor(pykka.ThreadingActor):
    """A pykka actor that owns ZeroMQ sockets and serves them from its own thread.

    Subclasses create sockets in ``on_start`` (the actor's thread) and call
    `watch` with a handler that gets each message's frames; override
    `next_deadline`/`on_deadline` for timers and `close_sockets` to close
    what they own. A stopped actor fails every future still queued for it with
    `TransportClosedError` (messages with a ``future`` field).
    """

    # Daemon threads: an interpreter exiting without close() must never hang
    # on an actor thread.
    use_daemon_thread = True
    actor_name: ClassVar[str] = "actor"

    @staticmethod
    def _create_actor_inbox() -> PollingInbox:
        return PollingInbox()

    def __init__(self) -> None:
        super().__init__()
        self.inbox: PollingInbox = self.actor_inbox  # type: ignore[assignment]
        self.inbox.bind(self)
        self._handlers: dict[zmq.Socket[bytes], Handler] = {}
        self._writable: dict[zmq.Socket[bytes], Callable[[], None]] = {}
        self._exact: dict[zmq.Socket[bytes], int] = {}
        self._deferred: list[tuple[Callable[..., None], tuple[Any, ...]]] = []
        self._poller = zmq.Poller()
        self._poller.register(self.inbox.doorbell.fileno(), zmq.POLLIN)
        self.log = _log.bind(actor=self.actor_name)

    # -- messages -----------------------------------------------------------

    def deliver(self, message: Any) -> None:
        """Run `on_receive` for a bare message put in the inbox. Actor thread.

        An exception is logged and fails the message's ``future`` (its
        caller must not wait for nothing); the actor carries on.
        """
        try:
            self.on_receive(message)
        except Exception as exc:
            self.log.exception("message failed", message=type(message).__name__)
            future = getattr(message, "future", None)
            if future is not None:
                settle(future, error=exc)

    def defer(self, func: Callable[..., None], *args: Any) -> None:
        """Run ``func(*args)`` right before this thread next sleeps in poll. Actor thread.

        For what wakes another thread of this process (a caller waiting for
        its reply, a poller waiting for its listener): done last, the woken
        thread finds the GIL free instead of waiting for this one to reach
        its poll, which costs two more hand-offs of the GIL. Also run before
        an envelope goes to pykka and at the stop, in order; an exception is
        logged, as for a socket handler.
        """
        self._deferred.append((func, args))

    def run_deferred(self) -> None:
        """Run what `defer` queued, in order. Actor thread."""
        while self._deferred:
            deferred, self._deferred = self._deferred, []
            for func, args in deferred:
                self._guarded(func, *args)

    # -- sockets ------------------------------------------------------------

    def watch(self, sock: zmq.Socket[bytes], handler: Handler, *, frames: int = 0) -> None:
        """Serve ``sock``: call ``handler(frames)`` for each message. Actor thread only.

        ``frames``: for an inproc socket between this library's actors whose
        messages always have that many frames, which are then read more
        cheaply (`recv_exactly`); 0 (any number) for every socket a peer can reach.
        Blocking sends on ``sock`` raise ``zmq.Again`` after a second instead of
        waiting forever for a peer that has gone.
        """
        sock.setsockopt(zmq.SNDTIMEO, _SEND_TIMEOUT_MS)
        self._handlers[sock] = handler
        if frames:
            self._exact[sock] = frames
        self._register(sock)

    def unwatch(self, sock: zmq.Socket[bytes]) -> None:
        """Stop serving ``sock`` (it stays open), for reading and writing. Actor thread only."""
        found = self._handlers.pop(sock, None) is not None
        self._exact.pop(sock, None)
        found = self._writable.pop(sock, None) is not None or found
        if found:
            self._poller.unregister(sock)

    def watch_writable(self, sock: zmq.Socket[bytes], handler: Callable[[], None]) -> None:
        """Call ``handler()`` whenever ``sock`` can take a message (POLLOUT). Actor thread only.

        For a socket that refused a send (``zmq.Again``, its high-water mark
        reached): `unwatch_writable` once there is nothing left to send, or
        the poll would wake at once, again and again.
        """
        self._writable[sock] = handler
        self._register(sock)

    def unwatch_writable(self, sock: zmq.Socket[bytes]) -> None:
        """Stop `watch_writable` for ``sock`` (reading is unchanged). Actor thread only."""
        if self._writable.pop(sock, None) is not None:
            self._register(sock)

    def _register(self, sock: zmq.Socket[bytes]) -> None:
        flags = (zmq.POLLIN if sock in self._handlers else 0) | (
            zmq.POLLOUT if sock in self._writable else 0
        )
        if flags:
            self._poller.register(sock, flags)  # modifies an existing registration
        else:
            self._poller.unregister(sock)

    def sockets_watched(self) -> bool:
        """Whether any socket is served (else the inbox alone matters)."""
        return bool(self._handlers)

    def serve_once(self, timeout_ms: float | None) -> None:
        """Poll sockets and doorbell once, run ready handlers and due timers. Actor thread."""
        deadline = self.next_deadline()
        if deadline is not None:
            wait_ms = max(0.0, (deadline - time.monotonic()) * 1000.0)
            timeout_ms = wait_ms if timeout_ms is None else min(timeout_ms, wait_ms)
        if self._deferred:
            self.run_deferred()
        events = self._poller.poll(None if timeout_ms is None else math.ceil(timeout_ms))
        for sock, event in events:
            if isinstance(sock, int):
                self.inbox.doorbell.clear()
                continue
            handler = self._handlers.get(sock)
            if handler is not None and event & _POLLIN:
                self._read_socket(sock, handler)
            writable = self._writable.get(sock)
            if writable is not None and event & _POLLOUT:
                self._guarded(writable)
        if deadline is not None and time.monotonic() >= deadline:
            self._guarded(self.on_deadline, time.monotonic())

    def _read_socket(self, sock: zmq.Socket[bytes], handler: Handler) -> None:
        # poll() said a message is there; after it, asking is cheaper than a
        # receive that fails with zmq.Again.
        count = self._exact.get(sock, 0)
        for _ in range(_FRAMES_PER_SOCKET):
            try:
                frames = recv_exactly(sock, count) if count else recv_frames(sock)
            except zmq.Again:
                return
            self._guarded(handler, frames)
            if sock not in self._handlers:  # the handler unwatched (or closed) it
                return
            if not readable(sock):
                return

    def _guarded(self, func: Callable[..., None], *args: Any) -> None:
        # Nothing a peer sends may kill an actor: log and carry on.
        try:
            func(*args)
        except zmq.Again:
            # A send timed out (see watch): the peer is gone, typically at shutdown.
            self.log.info("send timed out", handler=getattr(func, "__name__", repr(func)))
        except Exception:
            self.log.exception("handler failed", handler=getattr(func, "__name__", repr(func)))

    # -- timers -------------------------------------------------------------

    def next_deadline(self) -> float | None:
        """The ``time.monotonic()`` at which `on_deadline` should run next, or None."""
        return None

    def on_deadline(self, now: float) -> None:
        """Run due timers; ``now`` is ``time.monotonic()``. Actor thread."""

    # -- life cycle ---------------------------------------------------------

    def close_sockets(self) -> None:
        """Close every socket this actor owns. Actor thread; subclasses extend."""

    def fail_pending(self, error: Exception) -> None:
        """Fail every call this actor still holds. Actor thread; subclasses extend."""

    def on_stop(self) -> None:
        """Stop: fail what is queued or pending, close the sockets (actor thread)."""
        self._shutdown()

    def on_failure(self, *_exc_info: object) -> None:
        """Crash: same clean-up as a stop, so no caller hangs (actor thread)."""
        self._shutdown()

    def fail_queued(self, items: list[Any]) -> None:
        """Fail what was still queued at the stop: futures, asks. Any thread."""
        error = TransportClosedError(f"{self.actor_name} stopped")
        for item in items:
            envelope = item if type(item) is Envelope else None
            future = getattr(item if envelope is None else envelope.message, "future", None)
            if isinstance(future, Future | Waiter):
                settle(future, error=error)
            if envelope is None or envelope.reply_to is None:
                continue
            if isinstance(envelope.message, _ActorStop):
                # Another stopper (ActorRegistry.stop_all(), say) got what it
                # asked for; pykka's ref.stop() expects this, not an error.
                envelope.reply_to.set(None)
            else:
                envelope.reply_to.set_exception(
                    exc_info=(TransportClosedError, error, None),
                )

    def _shutdown(self) -> None:
        # What was already answered goes out (its sockets are still open).
        self.run_deferred()
        error = TransportClosedError(f"{self.actor_name} stopped")
        self.fail_queued(self.inbox.close())
        try:
            self.fail_pending(error)
        finally:
            self.close_sockets()
            self._handlers.clear()
            self._writable.clear()
            self._exact.clear()
            self.inbox.close_doorbell()
