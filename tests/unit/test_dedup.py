"""Tests of the server's dedup cache and of acknowledged casts in the Dispatcher."""

from __future__ import annotations

import threading
from typing import Any

import pytest

import zmqactors
from tests.wire_helpers import make_request
from zmqactors import wire
from zmqactors.core.dedup import DedupCache, Seen
from zmqactors.core.dispatch import Dispatcher
from zmqactors.core.stats import Stats
from zmqactors.wire import Ack, CallKind, ErrorKind, ErrorReply

pytestmark = pytest.mark.unit

MAX = 1 << 20
TARGET = zmqactors.Target(topic="compute", server="node-1")


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def ids(count: int) -> list[bytes]:
    return [i.to_bytes(16, "big") for i in range(count)]


# -- DedupCache ---------------------------------------------------------------


def test_first_sight_is_new_then_running_then_done():
    cache = DedupCache(ttl=10, max_entries=10, clock=Clock())
    assert cache.begin(b"a" * 16) is Seen.NEW
    assert cache.begin(b"a" * 16) is Seen.RUNNING
    cache.finish(b"a" * 16)
    assert cache.begin(b"a" * 16) is Seen.DONE
    assert cache.begin(b"b" * 16) is Seen.NEW


def test_done_entries_expire_after_the_ttl():
    clock = Clock()
    cache = DedupCache(ttl=10, max_entries=10, clock=clock)
    cache.begin(b"a" * 16)
    cache.finish(b"a" * 16)
    clock.now += 9.9
    assert cache.begin(b"a" * 16) is Seen.DONE
    clock.now += 0.2
    assert cache.begin(b"a" * 16) is Seen.NEW  # forgotten: a retry this late runs again
    assert len(cache) == 1


def test_expired_entries_are_purged_not_kept():
    clock = Clock()
    cache = DedupCache(ttl=10, max_entries=1000, clock=clock)
    for msg_id in ids(100):
        cache.begin(msg_id)
        cache.finish(msg_id)
    clock.now += 11
    cache.begin(b"x" * 16)
    assert len(cache) == 1


def test_the_ttl_counts_from_the_end_of_the_run():
    clock = Clock()
    cache = DedupCache(ttl=10, max_entries=10, clock=clock)
    cache.begin(b"a" * 16)
    clock.now += 60  # a long endpoint: never expires while it runs
    assert cache.begin(b"a" * 16) is Seen.RUNNING
    cache.finish(b"a" * 16)
    clock.now += 9
    assert cache.begin(b"a" * 16) is Seen.DONE


def test_size_is_bounded_forgetting_the_oldest_first():
    cache = DedupCache(ttl=1000, max_entries=50, clock=Clock())
    all_ids = ids(500)
    for msg_id in all_ids:
        cache.begin(msg_id)
        cache.finish(msg_id)
        assert len(cache) <= 50
    assert cache.begin(all_ids[-1]) is Seen.DONE
    assert cache.begin(all_ids[0]) is Seen.NEW


def test_running_entries_survive_the_size_bound():
    cache = DedupCache(ttl=1000, max_entries=5, clock=Clock())
    running = b"r" * 16
    cache.begin(running)
    for msg_id in ids(50):
        cache.begin(msg_id)
        cache.finish(msg_id)
    assert len(cache) <= 5
    assert cache.begin(running) is Seen.RUNNING


def test_forget_lets_a_retry_run():
    cache = DedupCache(ttl=10, max_entries=10, clock=Clock())
    cache.begin(b"a" * 16)
    cache.forget(b"a" * 16)
    assert cache.begin(b"a" * 16) is Seen.NEW


@pytest.mark.parametrize(("ttl", "size"), [(0, 10), (-1, 10), (10, 0)])
def test_bad_bounds_are_refused(ttl, size):
    with pytest.raises(ValueError, match="dedup cache"):
        DedupCache(ttl=ttl, max_entries=size)


def test_concurrent_begins_admit_one():
    cache = DedupCache()
    results: list[Seen] = []
    lock = threading.Lock()
    barrier = threading.Barrier(8)

    def worker() -> None:
        barrier.wait(timeout=10)
        seen = cache.begin(b"z" * 16)
        with lock:
            results.append(seen)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert results.count(Seen.NEW) == 1
    assert results.count(Seen.RUNNING) == 7


# -- the Dispatcher with acknowledged casts ------------------------------------


class Recorder:
    def __init__(self) -> None:
        self.got: list[Any] = []
        self.gate: threading.Event | None = None
        self.entered = threading.Event()

    def record(self, value: Any) -> None:
        self.entered.set()
        if self.gate is not None:
            assert self.gate.wait(timeout=10)
        self.got.append(value)

    def fail(self, value: Any) -> None:
        self.got.append(value)
        raise RuntimeError("boom")


def acked(method: str, msg_id: bytes, **changes: Any) -> bytes:
    fields: dict[str, Any] = {"kind": CallKind.ACKED_CAST, "args": {"value": 7}, **changes}
    return wire.encode(make_request(method, msg_id=msg_id, **fields))[1]


def decode(body: bytes | None) -> wire.Message | None:
    return None if body is None else wire.decode_body(body, MAX)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def stats() -> Stats:
    return Stats()


@pytest.fixture
def dispatcher(recorder: Recorder, stats: Stats) -> Dispatcher:
    return Dispatcher(TARGET, [recorder], MAX, stats)


def test_acked_cast_runs_and_is_acknowledged(dispatcher, recorder):
    msg_id = wire.new_msg_id()
    assert decode(dispatcher.handle(acked("record", msg_id))) == Ack(msg_id)
    assert recorder.got == [7]


def test_duplicate_runs_once_and_is_acknowledged_twice(dispatcher, recorder, stats):
    msg_id = wire.new_msg_id()
    first = decode(dispatcher.handle(acked("record", msg_id)))
    second = decode(dispatcher.handle(acked("record", msg_id)))
    assert first == second == Ack(msg_id)
    assert recorder.got == [7]
    assert stats.snapshot()["duplicates_dropped"] == 1


def test_duplicate_while_running_gets_nothing_and_does_not_run(dispatcher, recorder):
    recorder.gate = threading.Event()
    msg_id = wire.new_msg_id()
    replies: list[bytes | None] = []
    thread = threading.Thread(
        target=lambda: replies.append(dispatcher.handle(acked("record", msg_id)))
    )
    thread.start()
    assert recorder.entered.wait(timeout=10)
    assert dispatcher.handle(acked("record", msg_id)) is None
    recorder.gate.set()
    thread.join(timeout=10)
    assert [decode(r) for r in replies] == [Ack(msg_id)]
    assert recorder.got == [7]


def test_a_failing_acked_cast_is_acknowledged_and_not_run_again(dispatcher, recorder):
    msg_id = wire.new_msg_id()
    assert decode(dispatcher.handle(acked("fail", msg_id))) == Ack(msg_id)
    assert decode(dispatcher.handle(acked("fail", msg_id))) == Ack(msg_id)
    assert recorder.got == [7]


def test_acked_cast_to_a_missing_method_gets_an_error(dispatcher):
    msg_id = wire.new_msg_id()
    reply = decode(dispatcher.handle(acked("nope", msg_id)))
    assert isinstance(reply, ErrorReply)
    assert reply.kind is ErrorKind.NO_SUCH_METHOD


def test_acked_cast_for_another_target_is_not_acknowledged(dispatcher, recorder, stats):
    # The sender retries elsewhere after looking its route up again.
    msg_id = wire.new_msg_id()
    assert dispatcher.handle(acked("record", msg_id, topic="other")) is None
    assert recorder.got == []
    assert stats.snapshot()["misrouted"] == 1


def test_plain_casts_are_not_deduplicated(dispatcher, recorder):
    msg_id = wire.new_msg_id()
    body = acked("record", msg_id, kind=CallKind.CAST)
    assert dispatcher.handle(body) is None
    assert dispatcher.handle(body) is None
    assert recorder.got == [7, 7]


def test_listeners_of_one_server_share_the_cache(recorder, stats):
    cache = DedupCache()
    one = Dispatcher(TARGET, [recorder], MAX, stats, cache)
    two = Dispatcher(TARGET, [recorder], MAX, stats, cache)
    msg_id = wire.new_msg_id()
    assert decode(one.handle(acked("record", msg_id))) == Ack(msg_id)
    assert decode(two.handle(acked("record", msg_id))) == Ack(msg_id)
    assert recorder.got == [7]
