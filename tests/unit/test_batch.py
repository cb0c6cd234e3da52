"""core.batch: items gathered into batches, flushed by size or by age, with no clock."""

from __future__ import annotations

import threading

import pytest

from zmqactors.core.batch import Batcher

pytestmark = pytest.mark.unit


def test_batcher_flushes_by_size_and_by_age():
    batcher: Batcher[int] = Batcher(3, 0.5)
    assert batcher.add(1, now=10.0) is None
    assert batcher.due == 10.5
    assert batcher.add(2, now=10.1) is None
    assert batcher.take_due(10.4) == []
    assert batcher.add(3, now=10.2) == [1, 2, 3]
    assert batcher.due is None
    batcher.add(4, now=11.0)
    assert batcher.take_due(11.5) == [4]
    assert batcher.take() == []


def test_batcher_without_timeout_waits_for_size():
    batcher: Batcher[int] = Batcher(2, None)
    batcher.add(1, now=0.0)
    assert batcher.due is None
    assert batcher.take_due(1e9) == []
    assert batcher.take() == [1]


def test_a_batch_of_one_is_flushed_by_its_add():
    batcher: Batcher[str] = Batcher(1, 5.0)
    assert batcher.add("a", now=0.0) == ["a"]
    assert batcher.due is None


def test_take_returns_the_partial_batch_and_starts_afresh():
    batcher: Batcher[int] = Batcher(3, 1.0)
    batcher.add(1, now=0.0)
    batcher.add(2, now=0.5)
    assert batcher.take() == [1, 2]
    assert batcher.due is None
    # The next batch's age counts from its own first item.
    batcher.add(3, now=2.0)
    assert batcher.due == 3.0


def test_threads_adding_at_once_lose_and_duplicate_nothing():
    batcher: Batcher[int] = Batcher(7, None)
    flushed: list[list[int]] = []
    lock = threading.Lock()

    def add_many(base: int) -> None:
        for i in range(1000):
            batch = batcher.add(base + i, now=0.0)
            if batch is not None:
                with lock:
                    flushed.append(batch)

    threads = [threading.Thread(target=add_many, args=(k * 1000,)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
        assert not thread.is_alive()
    items = [i for batch in flushed for i in batch] + batcher.take()
    assert sorted(items) == list(range(4000))
    assert all(len(batch) == 7 for batch in flushed)
