"""core.routes: the copy-on-write route cache and its unreachable marks, with no sockets."""

from __future__ import annotations

import time

import pytest

from zmqactors.core.routes import RouteCache
from zmqactors.matchmaker import Route

pytestmark = pytest.mark.unit

A = Route("node-a", "tcp://127.0.0.1:1001", 1e12)
B = Route("node-b", "tcp://127.0.0.1:1002", 1e12)


def test_put_then_get_returns_the_routes_and_when_they_were_fetched():
    cache = RouteCache()
    assert cache.get("k") is None
    before = time.monotonic()
    cache.put("k", (A, B))
    cached = cache.get("k")
    assert cached is not None
    assert cached.routes == (A, B)
    assert before <= cached.fetched <= time.monotonic()
    assert cache.get("other") is None


def test_an_empty_answer_removes_the_entry_rather_than_caching_it():
    cache = RouteCache()
    cache.put("k", (A,))
    cache.put("k", ())
    assert cache.get("k") is None


def test_invalidate_forgets_one_key_only():
    cache = RouteCache()
    cache.put("k", (A,))
    cache.put("j", (B,))
    cache.invalidate("k")
    cache.invalidate("absent")
    assert cache.get("k") is None
    cached = cache.get("j")
    assert cached is not None
    assert cached.routes == (B,)


def test_a_reader_keeps_the_snapshot_it_took_while_the_writer_replaces_it():
    cache = RouteCache()
    cache.put("k", (A,))
    snapshot = cache.get("k")
    cache.put("k", (B,))
    assert snapshot is not None
    assert snapshot.routes == (A,)
    cached = cache.get("k")
    assert cached is not None
    assert cached.routes == (B,)


def test_an_address_marked_unreachable_is_left_out_until_its_mark_ends():
    cache = RouteCache()
    assert cache.reachable((A, B)) == (A, B)
    cache.mark_unreachable(A.address, time.monotonic() + 60)
    assert cache.reachable((A, B)) == (B,)
    # A mark that has ended no longer hides the address.
    cache.mark_unreachable(A.address, time.monotonic() - 1)
    assert cache.reachable((A, B)) == (A, B)


def test_marks_that_have_ended_are_dropped_when_another_is_set():
    cache = RouteCache()
    cache.mark_unreachable(A.address, time.monotonic() - 1)
    cache.mark_unreachable(B.address, time.monotonic() + 60)
    assert cache.reachable((A, B)) == (A,)
    assert A.address not in cache._unreachable  # bounded: ended marks do not pile up
