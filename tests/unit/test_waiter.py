"""Waiter: the one-shot result slot of a blocking call."""

from __future__ import annotations

import threading
from concurrent.futures import CancelledError, InvalidStateError

import pytest

from zmqactors.core.waiter import Waiter

pytestmark = pytest.mark.unit

TIMEOUT = 5.0


def test_a_result_set_by_another_thread_wakes_the_caller():
    waiter = Waiter()
    assert not waiter.done()
    setter = threading.Timer(0.05, waiter.set_result, args=(42,))
    setter.start()
    try:
        assert waiter.result(timeout=TIMEOUT) == 42
    finally:
        setter.join(TIMEOUT)
    assert waiter.done()


def test_an_exception_is_raised_by_result():
    waiter = Waiter()
    waiter.set_exception(ValueError("remote"))
    assert waiter.done()
    with pytest.raises(ValueError, match="remote"):
        waiter.result(timeout=TIMEOUT)


def test_result_times_out_and_leaves_it_unsettled():
    waiter = Waiter()
    with pytest.raises(TimeoutError):
        waiter.result(timeout=0.01)
    assert not waiter.done()


def test_only_the_first_outcome_counts():
    waiter = Waiter()
    waiter.set_result("first")
    with pytest.raises(InvalidStateError):
        waiter.set_result("second")
    with pytest.raises(InvalidStateError):
        waiter.set_exception(RuntimeError("late"))
    assert waiter.cancel() is False
    assert waiter.result(timeout=TIMEOUT) == "first"


def test_cancel_settles_it_as_cancelled():
    waiter = Waiter()
    assert waiter.cancel() is True
    assert waiter.done()
    with pytest.raises(InvalidStateError):
        waiter.set_result("too late")
    with pytest.raises(CancelledError):
        waiter.result(timeout=TIMEOUT)


def _race(waiter: Waiter, barrier: threading.Barrier, wins: list[str], name: str) -> None:
    barrier.wait()
    try:
        waiter.set_result(name)
    except InvalidStateError:
        return
    wins.append(name)


def test_racing_settlers_settle_it_exactly_once():
    for _ in range(200):
        waiter = Waiter()
        barrier = threading.Barrier(4, timeout=TIMEOUT)
        wins: list[str] = []
        threads = [
            threading.Thread(target=_race, args=(waiter, barrier, wins, f"t{i}")) for i in range(4)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(TIMEOUT)
        assert len(wins) == 1
        assert waiter.result(timeout=TIMEOUT) == wins[0]
