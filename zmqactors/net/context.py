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
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING

import pykka
import zmq

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["before_terminate", "get_context", "on_fork_child", "terminate"]

_lock = threading.Lock()
_context: zmq.Context[zmq.Socket[bytes]] | None = None
_context_pid = 0
_child_hooks: list[Callable[[], None]] = []
_terminate_hooks: list[Callable[[], None]] = []


def get_context() -> zmq.Context[zmq.Socket[bytes]]:
    """The ZeroMQ context of this process, created on first use. Any thread may call it."""
    global _context, _context_pid  # noqa: PLW0603 - the one process-wide context lives here
    pid = os.getpid()
    context = _context
    if context is not None and _context_pid == pid:
        return context
    with _lock:
        if _context is None or _context_pid != pid:
            _context = zmq.Context()
            _context_pid = pid
        return _context


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


def on_fork_child(hook: Callable[[], None]) -> None:
    """Run ``hook`` in every child right after ``fork()`` (before any other thread runs).

    Hooks must be quick and must not block: only the forking thread exists then.
    """
    _child_hooks.append(hook)


def _after_fork_in_child() -> None:
    global _lock, _context  # noqa: PLW0603 - reset the process-wide state for the child
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
