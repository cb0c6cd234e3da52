"""Tests of the SendWindow: slots per server address between callers and sockets."""

from __future__ import annotations

import threading
import time

import pytest

from zmqactors.core.window import SendWindow
from zmqactors.errors import TransportClosedError

pytestmark = pytest.mark.unit

A = "tcp://127.0.0.1:1"
B = "tcp://127.0.0.1:2"


def soon(seconds: float = 0.05) -> float:
    return time.monotonic() + seconds


def test_slots_up_to_the_limit_then_refused_at_the_deadline():
    window = SendWindow(3)
    assert all(window.acquire(A, soon()) for _ in range(3))
    assert not window.acquire(A, soon())
    assert window.used(A) == 3


def test_addresses_have_their_own_slots():
    window = SendWindow(1)
    assert window.acquire(A, soon())
    assert window.acquire(B, soon())
    assert not window.acquire(A, soon())


def test_release_frees_a_slot_and_forgets_idle_addresses():
    window = SendWindow(1)
    assert window.acquire(A, soon())
    window.release(A)
    assert window.used(A) == 0
    assert window.acquire(A, soon())


def test_zero_means_unlimited():
    window = SendWindow(0)
    assert all(window.acquire(A, soon()) for _ in range(10_000))
    window.release(A)
    assert window.used(A) == 0


def test_a_release_wakes_a_blocked_caller():
    window = SendWindow(1)
    assert window.acquire(A, soon())
    got: list[bool] = []
    waiter = threading.Thread(target=lambda: got.append(window.acquire(A, soon(30))))
    waiter.start()
    deadline = time.monotonic() + 10
    while window._waiting == 0:  # wait until it blocks
        assert time.monotonic() < deadline
        time.sleep(0.001)
    window.release(A)
    waiter.join(timeout=10)
    assert got == [True]
    assert window.used(A) == 1


def test_close_wakes_a_caller_waiting_for_a_slot_with_transport_closed():
    window = SendWindow(1)
    assert window.acquire(A, soon())
    outcome: list[BaseException] = []
    waiting = threading.Event()

    def wait_for_slot() -> None:
        waiting.set()
        try:
            window.acquire(A, soon(60.0))
        except TransportClosedError as exc:
            outcome.append(exc)

    waiter = threading.Thread(target=wait_for_slot)
    waiter.start()
    assert waiting.wait(10)
    deadline = time.monotonic() + 10
    while window._waiting == 0 and time.monotonic() < deadline:
        time.sleep(0.001)
    window.close()
    waiter.join(10)
    assert not waiter.is_alive()
    assert len(outcome) == 1
    with pytest.raises(TransportClosedError):
        window.acquire(A, soon())
