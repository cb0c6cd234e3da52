"""The poller's choice of worker: few hot threads, no request stuck behind a slow one."""

from __future__ import annotations

import pytest

from zmqactors.core.balance import Balancer

pytestmark = pytest.mark.unit

FAST = 0.001


def make(*workers: bytes) -> Balancer:
    balancer = Balancer(FAST)
    for worker in workers:
        balancer.add(worker)
    return balancer


def test_a_lone_request_goes_to_the_most_recently_idle_worker():
    balancer = make(b"a", b"b")
    assert balancer.take(0.0, 1) == b"b"
    balancer.done(b"b", 0.5)
    assert balancer.take(1.0, 1) == b"b"  # the warm one again, not round-robin


def test_while_the_busy_worker_is_fast_a_lone_request_waits_for_it():
    balancer = make(b"a", b"b")
    assert balancer.take(0.0, 1) == b"b"
    assert balancer.take(0.0002, 1) is None
    assert balancer.wake_at == pytest.approx(FAST)


def test_once_the_busy_worker_is_slow_another_takes_the_request():
    balancer = make(b"a", b"b")
    assert balancer.take(0.0, 1) == b"b"
    assert balancer.take(0.002, 1) == b"a"
    assert balancer.in_progress == 2


def test_under_load_a_fresh_worker_gets_one_request_in_advance_but_no_more():
    balancer = make(b"a", b"b")
    assert balancer.depth == 2  # nothing measured yet
    assert balancer.take(0.0, 50) == b"b"
    assert balancer.take(0.0001, 49) == b"b"
    assert balancer.take(0.0002, 48) is None
    balancer.done(b"b", 0.0003)
    assert balancer.take(0.0003, 48) == b"b"


def serve_at_pace(balancer: Balancer, pace: float, count: int) -> float:
    """``count`` requests, each answered ``pace`` seconds after it was given."""
    now = 0.0
    for _ in range(count):
        worker = balancer.take(now, 1)
        assert worker is not None
        now += pace
        balancer.done(worker, now)
    return now


def test_a_worker_that_serves_quickly_gets_more_in_advance_up_to_a_bound():
    balancer = make(b"a", b"b")
    now = serve_at_pace(balancer, 0.00002, 100)  # 20 µs each: 50 fit in the fast window
    assert balancer.depth == 32
    given = [balancer.take(now, 100) for _ in range(40)]
    assert given[:32] == [b"b"] * 32
    assert given[32:] == [None] * 8
    assert balancer.in_progress == 32


def test_the_advance_shrinks_when_requests_get_slower():
    balancer = make(b"a", b"b")
    serve_at_pace(balancer, 0.00002, 100)
    assert balancer.depth == 32
    serve_at_pace(balancer, 0.0005, 50)  # 500 µs each: two fit
    assert balancer.depth == 2


def test_once_requests_are_slow_none_waits_in_a_worker_behind_another():
    balancer = make(b"a", b"b")
    now = serve_at_pace(balancer, 0.02, 20)  # 20 ms each: slower than the fast window
    assert balancer.depth == 1
    assert balancer.take(now, 50) == b"b"
    # Not queued behind b's request, which may take 20 ms: it waits for the fast window...
    assert balancer.take(now + 0.0001, 49) is None
    assert balancer.wake_at == pytest.approx(now + FAST)
    # ...then goes to the idle worker.
    assert balancer.take(now + FAST, 49) == b"a"


def test_a_queued_request_counts_as_started_when_the_one_before_it_ends():
    balancer = make(b"a", b"b")
    assert balancer.take(0.0, 2) == b"b"
    assert balancer.take(0.0, 2) == b"b"
    balancer.done(b"b", 0.0009)
    # The second began at 0.0009, so at 0.0015 the worker is still fast.
    assert balancer.take(0.0015, 1) is None
    assert balancer.wake_at == pytest.approx(0.0019)


def test_no_idle_worker_means_the_request_waits():
    balancer = make(b"a")
    assert balancer.take(0.0, 1) == b"a"
    assert balancer.take(1.0, 1) is None
    assert balancer.wake_at is None
    balancer.done(b"a", 1.5)
    assert balancer.in_progress == 0
    # Idle again once it answered: the next request is its.
    assert balancer.take(2.0, 1) == b"a"
