"""The one ZeroMQ context of this process, and what happens to it across ``fork()``.

Exactly one place owns the process context. It is created lazily on first use
and belongs to the process that created it: after ``fork()`` the child's first
call to `get_context` builds a new one, and the parent's context and sockets
are never closed, terminated or used by the child (pyzmq's own finalizers
check the pid too, so dropping the parent's objects in the child is safe).

``os.register_at_fork(after_in_child=...)`` also cleans what the child inherits
but cannot use: pykka's registry of the parent's actors (whose threads do not
exist in the child; ``ActorRegistry.stop_all()`` there would hang) and any
resource registered with `on_fork_child` (doorbell descriptors, locks).

How many sockets the context may hold (``ZMQ_MAX_SOCKETS``) must be set
before its first socket: `configure` records the first transport's
``max_sockets`` and `get_context` applies it when it creates the context
(in a forked child too). A later transport asking for more is logged once.
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING

import pykka
import structlog
import zmq

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "before_terminate",
    "configure",
    "current_pid",
    "exit_linger",
    "get_context",
    "lingering",
    "max_sockets",
    "on_fork_child",
    "terminate",
]

_log = structlog.get_logger("zmqactors.context")

_lock = threading.Lock()
_context: zmq.Context[zmq.Socket[bytes]] | None = None
_context_pid = 0
# This process's id, kept current across fork: os.getpid() is a system call
# (glibc stopped caching it), paid on every call's path to ask "forked?".
_pid = os.getpid()
_child_hooks: list[Callable[[], None]] = []
_terminate_hooks: list[Callable[[], None]] = []
# ZMQ_MAX_SOCKETS of the contexts this module creates (None: libzmq's own,
# 1,023), and the larger values asked too late, each logged once.
_max_sockets: int | None = None
_refused_max: set[int] = set()
# The longest linger a socket of this process was closed with beyond its
# transport's own (see `lingering`), in seconds.
_exit_linger = 0.0


def configure(max_sockets: int) -> None:
    """Ask for a context that holds ``max_sockets`` sockets. Any thread.

    Takes effect when the context is created, before its first socket (the
    only time libzmq reads it). Once it exists, a larger value cannot apply:
    that is logged once per value, and the context keeps its limit.
    """
    global _max_sockets  # noqa: PLW0603 - the one process-wide context lives here
    with _lock:
        if _context is None or _context_pid != os.getpid():
            _max_sockets = max(max_sockets, _max_sockets or 0)
            return
        current = _context.get(zmq.MAX_SOCKETS)
        if max_sockets <= current or max_sockets in _refused_max:
            return
        _refused_max.add(max_sockets)
    _log.warning(
        "max_sockets cannot grow once the process's ZeroMQ context exists",
        asked=max_sockets,
        max_sockets=current,
        hint="set max_sockets on the first transport the process starts",
    )


def max_sockets() -> int:
    """The ``ZMQ_MAX_SOCKETS`` of this process's context (created if needed). Any thread."""
    return get_context().get(zmq.MAX_SOCKETS)


def get_context() -> zmq.Context[zmq.Socket[bytes]]:
    """The ZeroMQ context of this process, created on first use. Any thread may call it."""
    global _context, _context_pid  # noqa: PLW0603 - the one process-wide context lives here
    pid = os.getpid()
    context = _context
    if context is not None and _context_pid == pid:
        return context
    with _lock:
        if _context is None or _context_pid != pid:
            created: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
            if _max_sockets is not None:
                created.set(zmq.MAX_SOCKETS, _max_sockets)
            # libzmq starts its I/O thread and reaper with the first socket,
            # and aborts the process if their epoll descriptors cannot be
            # opened then: start them now, while the creator has descriptors,
            # so running out later fails a socket or connection instead.
            created.socket(zmq.PAIR).close(linger=0)
            _context = created
            _context_pid = pid
        return _context


def lingering(seconds: float) -> None:
    """A socket was closed with ``seconds`` of linger: termination at exit may wait that long."""
    global _exit_linger  # noqa: PLW0603 - one value per process, set from the closing actor
    _exit_linger = max(_exit_linger, seconds)


def exit_linger() -> float:
    """The longest linger given to a socket at its close through `lingering` (0: none)."""
    return _exit_linger


def terminate(timeout: float) -> bool:
    """Terminate this process's context, letting queued messages leave; at most ``timeout`` s.

    For interpreter exit, once every transport is closed: closed sockets keep
    sending what they queued (each for its linger) only while the context
    lives, and pyzmq does not terminate it at exit. Waits in a daemon thread
    so a socket left open elsewhere cannot hang the exit. Does nothing for a
    context inherited from a parent. Returns whether termination finished.
    """
    context = _context
    if context is None or _context_pid != os.getpid():
        return True

    def finish() -> None:
        for hook in _terminate_hooks:
            hook()
        context.term()

    waiter = threading.Thread(target=finish, name="zmqactors-term", daemon=True)
    try:
        waiter.start()
    except RuntimeError:
        # Python 3.12 and later start no thread once the interpreter shuts
        # down (atexit), so nothing could bound the wait: terminate here only
        # when it cannot block, that is when every socket of the context is
        # closed (each then lingers at most its own LINGER). A socket still
        # open (someone else's, never closed) would block term() for ever:
        # exit without the flush instead.
        for hook in _terminate_hooks:
            hook()
        sockets = getattr(context, "_sockets", None)  # pyzmq's own registry
        if sockets is None or any(not sock.closed for sock in list(sockets)):
            return False
        context.term()
        return True
    waiter.join(timeout)
    return not waiter.is_alive()


def before_terminate(hook: Callable[[], None]) -> None:
    """Run ``hook`` in `terminate`, before the context terminates (to close helper sockets).

    Hooks run in `terminate`'s waiter thread, within its time bound.
    """
    _terminate_hooks.append(hook)


def current_pid() -> int:
    """The id of this process, as ``os.getpid()`` says, without its system call. Any thread."""
    return _pid


def on_fork_child(hook: Callable[[], None]) -> None:
    """Run ``hook`` in every child right after ``fork()`` (before any other thread runs).

    Hooks must be quick and must not block: only the forking thread exists then.
    """
    _child_hooks.append(hook)


def _after_fork_in_child() -> None:
    global _lock, _context, _pid, _exit_linger  # noqa: PLW0603 - reset the process-wide state for the child
    _pid = os.getpid()
    _exit_linger = 0.0
    # Another thread may have held the lock at the moment of the fork; in the
    # child that thread is gone and the lock would stay held forever.
    _lock = threading.Lock()
    # Not closed or terminated: it belongs to the parent. Forget it.
    _context = None
    _forget_inherited_actors()
    for hook in _child_hooks:
        hook()


def _forget_inherited_actors() -> None:
    registry = pykka.ActorRegistry
    # pykka keeps its registry in class attributes; the parent's actors have no
    # thread here, so asking them anything (stop_all() included) would hang.
    registry._actor_refs_lock = threading.RLock()  # noqa: SLF001 - no public reset exists
    registry._actor_refs.clear()  # noqa: SLF001


os.register_at_fork(after_in_child=_after_fork_in_child)
