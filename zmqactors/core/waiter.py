"""`Waiter`: the one-shot result slot of a blocking call, lighter than a Future.

A blocking `RPCClient.call` needs what a `concurrent.futures.Future` gives the
reply-waiter (``set_result``, ``set_exception``, ``done``) and the caller
(``result(timeout)``, ``cancel``), but none of its callbacks, waiter lists or
condition variable: building a Future cost 3.7 µs here, and setting and
reading it two condition round trips more, on every call. A `Waiter` is two
plain locks: one the caller sleeps on until the result is in, one that lets
exactly one thread settle it.
"""

from __future__ import annotations

import threading
from concurrent.futures import CancelledError, Future, InvalidStateError
from concurrent.futures import TimeoutError as FutureTimeoutError
from typing import Any

__all__ = ["Waiter", "settle"]


def settle(
    future: Future[Any] | Waiter, *, result: Any = None, error: BaseException | None = None
) -> None:
    """Resolve ``future`` unless someone (a cancelling caller) already did. Any thread."""
    try:
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)
    except InvalidStateError:
        pass


class Waiter:
    """A result, or an exception, set once by one thread and awaited by another. Any thread."""

    __slots__ = ("_claim", "_error", "_ready", "_result")

    def __init__(self) -> None:
        # Held until the outcome is in; the caller blocks acquiring it.
        self._ready = threading.Lock()
        self._ready.acquire()
        # Taken by whoever settles (or cancels) first; the others lose.
        self._claim = threading.Lock()
        self._result: Any = None
        self._error: BaseException | None = None

    def done(self) -> bool:
        """Whether a result, an exception or a cancellation is in (or being put in)."""
        return self._claim.locked()

    def set_result(self, result: Any) -> None:
        """Settle with ``result``; ``InvalidStateError`` if already settled."""
        if not self._claim.acquire(blocking=False):
            raise InvalidStateError("the call already has an outcome")
        self._result = result
        self._ready.release()

    def set_exception(self, error: BaseException) -> None:
        """Settle with ``error``; ``InvalidStateError`` if already settled."""
        if not self._claim.acquire(blocking=False):
            raise InvalidStateError("the call already has an outcome")
        self._error = error
        self._ready.release()

    def cancel(self) -> bool:
        """Settle as cancelled unless an outcome is already in; whether it was cancelled."""
        if not self._claim.acquire(blocking=False):
            return False
        self._error = CancelledError()
        self._ready.release()
        return True

    def result(self, timeout: float | None = None) -> Any:
        """The result, or raise the exception; ``TimeoutError`` after ``timeout`` seconds.

        May be called once, by the thread that made the call.
        """
        if not self._ready.acquire(timeout=-1 if timeout is None else max(timeout, 0.0)):
            raise FutureTimeoutError
        error = self._error
        if error is not None:
            self._error = None  # no cycle through the traceback about to be added
            raise error
        return self._result
