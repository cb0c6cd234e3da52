"""The poller's choice of listener: few hot threads, no request stuck behind a slow one."""

from __future__ import annotations

import pytest

from zmqactors.actors.poller import Balancer

pytestmark = pytest.mark.unit

FAST = 0.001


def make(*listeners: bytes) -> Balancer:
    balancer = Balancer(FAST)
    for listener in listeners:
        balancer.add(listener)
    return balancer


def test_a_lone_request_goes_to_the_most_recently_idle_listener():
    balancer = make(b"a", b"b")
    assert balancer.take(0.0, 1) == b"b"
    balancer.done(b"b")
    assert balancer.take(1.0, 1) == b"b"  # the warm one again, not round-robin


def test_while_the_busy_listener_is_fast_a_lone_request_waits_for_it():
    balancer = make(b"a", b"b")
    assert balancer.take(0.0, 1) == b"b"
    assert balancer.take(0.0002, 1) is None
    assert balancer.wake_at == pytest.approx(FAST)


def test_once_the_busy_listener_is_slow_another_takes_the_request():
    balancer = make(b"a", b"b")
    assert balancer.take(0.0, 1) == b"b"
    assert balancer.take(0.002, 1) == b"a"
    assert balancer.in_progress == 2


def test_under_load_a_fast_listener_gets_one_request_in_advance_but_no_more():
    balancer = make(b"a", b"b")
    assert balancer.take(0.0, 50) == b"b"
    assert balancer.take(0.0001, 49) == b"b"
    assert balancer.take(0.0002, 48) is None
    balancer.done(b"b")
    assert balancer.take(0.0003, 48) == b"b"


def test_no_idle_listener_means_the_request_waits():
    balancer = make(b"a")
    assert balancer.take(0.0, 1) == b"a"
    assert balancer.take(1.0, 1) is None
    assert balancer.wake_at is None
    balancer.done(b"a")
    assert balancer.in_progress == 0
    assert balancer.known(b"a")
    assert not balancer.known(b"z")
