"""How many messages per server address may wait between the callers and the socket.

Callers acquire a slot before they hand a call or cast to the reply-waiter
(`SendCall`/`SendCast` with ``credited=True``); the reply-waiter releases it
once ZeroMQ has taken the message, or once it gave up on it. So the
reply-waiter's inbox and its per-address backlog (messages that met a full
send queue) hold at most ``limit`` messages per address, and a caller that
finds them full blocks — in its own thread, touching no socket — until a slot
frees or its deadline passes. Uncontended, a slot costs one lock and no
thread hop.
"""

from __future__ import annotations

import threading
import time

from zmqactors.errors import TransportClosedError

__all__ = ["SendWindow"]


class SendWindow:
    """Slots per address; ``limit`` 0 means unlimited. Any thread."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        # Taken directly (a C-level context manager) where nobody waits; the
        # condition shares it for the callers that must wait for a slot.
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._used: dict[str, int] = {}
        self._waiting = 0
        self._closed = False

    def acquire(self, address: str, deadline: float) -> bool:
        """Take a slot for ``address``, waiting until ``deadline`` (monotonic); False if none.

        Raises `TransportClosedError` once `close` was called, waiting or not.
        """
        limit = self.limit
        if not limit:
            return True
        with self._lock:
            if self._closed:
                # Wake those close() could not (see close).
                self._cond.notify_all()
                msg = "the transport is closed"
                raise TransportClosedError(msg)
            used = self._used.get(address, 0)
            if used >= limit:
                self._waiting += 1
                try:
                    while used >= limit:
                        if self._closed:
                            msg = "the transport is closed"
                            raise TransportClosedError(msg)
                        remaining = deadline - time.monotonic()
                        if remaining <= 0:
                            return False
                        self._cond.wait(remaining)
                        used = self._used.get(address, 0)
                finally:
                    self._waiting -= 1
            self._used[address] = used + 1
            return True

    def release(self, address: str) -> None:
        """Give back a slot of ``address``."""
        if not self.limit:
            return
        with self._lock:
            used = self._used.get(address, 0) - 1
            if used > 0:
                self._used[address] = used
            else:
                self._used.pop(address, None)
            if self._waiting:
                self._cond.notify_all()

    def close(self) -> None:
        """Wake every caller waiting for a slot: they raise `TransportClosedError`.

        Never waits for the lock: a signal handler closing the transport may
        have interrupted its own thread inside `acquire`/`release`, which
        wakes the waiters itself when it lets go.
        """
        self._closed = True
        if self._lock.acquire(blocking=False):
            try:
                self._cond.notify_all()
            finally:
                self._lock.release()

    def used(self, address: str) -> int:
        """How many slots of ``address`` are taken now."""
        with self._cond:
            return self._used.get(address, 0)
