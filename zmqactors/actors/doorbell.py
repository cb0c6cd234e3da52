"""The doorbell: a file descriptor that wakes an actor sleeping in ``zmq.Poller.poll``.

An actor sleeps in one ``poll()`` over its sockets and its doorbell; another
thread that puts a message in its inbox (`zmqactors.actors.inbox`) rings the
doorbell so the actor wakes and takes it. Doorbells inherited over a
``fork()`` are closed in the child (`on_fork_child`).
"""

from __future__ import annotations

import contextlib
import os
import weakref
from typing import ClassVar

from zmqactors.net.context import on_fork_child

__all__ = ["Doorbell"]


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
