"""The base of every zmqactors actor: a pykka actor that also serves ZeroMQ sockets.

Its inbox is a `PollingInbox` (`zmqactors.actors.inbox`): while no message is
queued, the inbox's ``get()`` polls the actor's sockets together with its
`Doorbell` (`zmqactors.actors.doorbell`), running their handlers and timers.

So one thread per actor does everything: the actor's sockets are created in
``on_start``, used by its handlers and closed in ``on_stop``/``on_failure``,
all in the actor's thread. Other threads reach the actor only through its
inbox: pykka's ``tell``/``ask``, or a bare message put in the inbox, which the
inbox hands to `SocketActor.deliver`. A stopped actor fails every future still
queued for it with `TransportClosedError`.

Relies on pykka internals (``_create_actor_inbox``, ``Envelope``, ``_ActorStop``
and the shape of its actor loop); setup.cfg pins pykka's minor range for that reason.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, ClassVar

import pykka
import structlog
import zmq
from pykka._envelope import Envelope
from pykka.messages import _ActorStop

from zmqactors.actors.frames import readable, recv_frames
from zmqactors.actors.inbox import PollingInbox
from zmqactors.core.waiter import Waiter, settle
from zmqactors.errors import TransportClosedError

__all__ = ["SocketActor"]

_log = structlog.get_logger("zmqactors.actors")

_FRAMES_PER_SOCKET = 256
# A send on a watched socket gives up after this long (zmq.Again): a DEALER
# whose peer is gone (a poller closed under a worker finishing a request)
# would otherwise block its actor thread forever, deaf to its stop message.
_SEND_TIMEOUT_MS = 1000
# poll() reports plain ints; masking them with zmq's enum members costs an enum operation each.
_POLLIN = int(zmq.POLLIN)
_POLLOUT = int(zmq.POLLOUT)


FramesHandler = Callable[[list[bytes]], None]


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
        self._handlers: dict[zmq.Socket[bytes], FramesHandler] = {}
        self._writable: dict[zmq.Socket[bytes], Callable[[], None]] = {}
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
        its reply, a poller waiting for its worker): done last, the woken
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

    def watch(self, sock: zmq.Socket[bytes], handler: FramesHandler) -> None:
        """Serve ``sock``: call ``handler(frames)`` for each message. Actor thread only.

        Blocking sends on ``sock`` raise ``zmq.Again`` after a second instead of
        waiting forever for a peer that has gone.
        """
        sock.setsockopt(zmq.SNDTIMEO, _SEND_TIMEOUT_MS)
        self._handlers[sock] = handler
        self._register(sock)

    def unwatch(self, sock: zmq.Socket[bytes]) -> None:
        """Stop serving ``sock`` (it stays open), for reading and writing. Actor thread only."""
        found = self._handlers.pop(sock, None) is not None
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
        # Awake from here on: a put while the events below are handled needs no
        # ring, since the inbox looks at its queue before it sleeps again.
        self.inbox.awake()
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

    def _read_socket(self, sock: zmq.Socket[bytes], handler: FramesHandler) -> None:
        # poll() said a message is there; after it, asking is cheaper than a
        # receive that fails with zmq.Again.
        for _ in range(_FRAMES_PER_SOCKET):
            try:
                frames = recv_frames(sock)
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
            self.inbox.close_doorbell()
