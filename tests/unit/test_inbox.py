"""actors.inbox: PollingInbox, the actor's inbox, fed by any thread, served by one."""

from __future__ import annotations

import collections
import os
import threading
import time
from concurrent.futures import Future
from typing import Any

import pykka
import pytest

from tests.helpers import wait_until
from tests.unit.actor_kit import (
    TIMEOUT,
    Record,
    Recorder,
    WithFuture,
    blocked,
    readable,
    start,
    stop,
)
from zmqactors.actors.inbox import PollingInbox
from zmqactors.errors import TransportClosedError

pytestmark = pytest.mark.unit


# -- the inbox on its own ---------------------------------------------------------------


def test_closed_inbox_refuses_puts_and_returns_what_was_queued():
    inbox = PollingInbox()
    try:
        inbox.put("a")
        inbox.put("b")
        assert not inbox.empty()
        assert inbox.close() == ["a", "b"]
        assert inbox.empty()
        with pytest.raises(pykka.ActorDeadError):
            inbox.put("c")
        assert inbox.close() == []
    finally:
        inbox.doorbell.close()


def test_put_rings_only_while_the_actor_sleeps():
    inbox = PollingInbox()
    try:
        inbox.put("awake")
        assert not readable(inbox.doorbell.fileno())
        inbox._sleeping = True
        inbox.put("asleep")
        assert readable(inbox.doorbell.fileno(), TIMEOUT)
    finally:
        inbox.close()
        inbox.doorbell.close()


def test_one_ring_per_sleep_however_many_puts():
    inbox = PollingInbox()
    try:
        inbox._sleeping = True
        for i in range(5):
            inbox.put(i)
        assert readable(inbox.doorbell.fileno(), TIMEOUT)
        # An eventfd adds what is written: one ring reads back as 1.
        assert int.from_bytes(os.read(inbox.doorbell.fileno(), 8), "little") == 1
        # Once its poll returned, the actor is awake: puts need no ring.
        inbox._sleeping = True
        inbox.awake()
        inbox.put("after")
        assert not readable(inbox.doorbell.fileno())
    finally:
        inbox.close()
        inbox.doorbell.close()


# -- ask and tell -----------------------------------------------------------------------


def test_ask_and_tell():
    ref = start(Recorder)
    try:
        assert ref.ask("hello", timeout=TIMEOUT) == ("echo", "hello")
        ref.tell("told-1")
        ref.tell("told-2")
        assert ref.ask("seen", timeout=TIMEOUT) == ["hello", "told-1", "told-2"]
    finally:
        stop(ref)


def test_actor_runs_in_its_own_thread():
    ref = start(Recorder)
    try:
        ident = ref.ask("thread", timeout=TIMEOUT)
        assert ident != threading.get_ident()
        assert ref.proxy().thread_ident.get(timeout=TIMEOUT) == ident
    finally:
        stop(ref)


def test_ask_error_goes_back_to_the_caller_and_actor_lives():
    ref = start(Recorder)
    try:
        with pytest.raises(RuntimeError, match="asked to fail"):
            ref.ask(("raise", "asked to fail"), timeout=TIMEOUT)
        assert ref.ask("still", timeout=TIMEOUT) == ("echo", "still")
    finally:
        stop(ref)


def test_many_threads_telling_lose_nothing_and_keep_per_thread_order():
    threads_n, per_thread = 8, 1000
    ref = start(Recorder)
    try:
        barrier = threading.Barrier(threads_n)

        def produce(source: int) -> None:
            barrier.wait(TIMEOUT)
            for seq in range(per_thread):
                ref.tell(Record(source, seq))

        threads = [threading.Thread(target=produce, args=(i,)) for i in range(threads_n)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(TIMEOUT * 4)
            assert not thread.is_alive()
        seen = ref.ask("seen", timeout=TIMEOUT * 4)
        assert len(seen) == threads_n * per_thread
        for source in range(threads_n):
            assert [r.seq for r in seen if r.source == source] == list(range(per_thread))
    finally:
        stop(ref)


def test_tells_from_a_thread_wake_a_sleeping_actor_every_time():
    # Each tell lands while the actor sleeps in poll(): only the doorbell wakes it.
    ref = start(Recorder)
    try:
        for i in range(200):
            assert ref.ask(i, timeout=TIMEOUT) == ("echo", i)
    finally:
        stop(ref)


# -- stopping ----------------------------------------------------------------------------


def test_tell_after_stop_raises_actor_dead():
    ref = start(Recorder)
    assert ref.stop(timeout=TIMEOUT) is True
    assert not ref.is_alive()
    with pytest.raises(pykka.ActorDeadError):
        ref.tell("late")
    with pytest.raises(pykka.ActorDeadError):
        ref.ask("late", timeout=TIMEOUT)
    assert ref.stop(timeout=TIMEOUT) is False


@pytest.mark.parametrize("queue_it", ["tell", "bare put"])
def test_future_queued_before_stop_fails_with_transport_closed(queue_it):
    ref = start(Recorder)
    queued: Future[Any] = Future()
    try:
        with blocked(ref) as release:
            stopped = ref.stop(block=False)
            # Queued behind the stop: the actor will stop without handling it.
            if queue_it == "tell":
                ref.tell(WithFuture(queued))
            else:
                ref.actor_inbox.put(WithFuture(queued))
            late_ask = ref.ask("late", block=False)
            release.set()
            assert stopped.get(timeout=TIMEOUT) is True
            with pytest.raises(TransportClosedError, match="recorder"):
                queued.result(timeout=TIMEOUT)
            with pytest.raises(TransportClosedError):
                late_ask.get(timeout=TIMEOUT)
    finally:
        stop(ref)
    with pytest.raises(pykka.ActorDeadError):
        ref.tell("after")


def test_future_handled_before_stop_keeps_its_result():
    ref = start(Recorder)
    handled: Future[Any] = Future()
    try:
        ref.tell(WithFuture(handled))
    finally:
        stop(ref)
    assert handled.result(timeout=TIMEOUT) == "handled"


def test_crash_fails_queued_futures_too():
    ref = start(Recorder)
    queued: Future[Any] = Future()
    try:
        with blocked(ref) as release:
            ref.tell(("raise", "crash on purpose"))  # a tell that raises kills the actor
            ref.tell(WithFuture(queued))
            release.set()
            with pytest.raises(TransportClosedError):
                queued.result(timeout=TIMEOUT)
            wait_until(lambda: not ref.is_alive(), "the crashed actor to stop", timeout=TIMEOUT)
    finally:
        stop(ref)


def test_doorbell_is_closed_after_stop():
    ref = start(Recorder)
    inbox = ref.actor_inbox
    assert isinstance(inbox, PollingInbox)
    fd = inbox.doorbell.fileno()
    os.fstat(fd)  # open while running
    assert ref.ask("x", timeout=TIMEOUT) == ("echo", "x")
    stop(ref)
    assert inbox.doorbell._closed
    with pytest.raises(OSError, match="Bad file descriptor"):
        os.fstat(fd)


# -- bare messages: put in the inbox without a pykka envelope ------------------------------


def test_bare_messages_are_handled_in_order_with_envelopes():
    ref = start(Recorder)
    try:
        inbox = ref.actor_inbox
        for seq in range(100):
            if seq % 3:
                inbox.put(Record(0, seq))
            else:
                ref.tell(Record(0, seq))
        seen = ref.ask("seen", timeout=TIMEOUT)
        assert [r.seq for r in seen] == list(range(100))
    finally:
        stop(ref)


def test_a_failing_bare_message_fails_its_future_and_the_actor_lives():
    class Fails(Recorder):
        def on_receive(self, message: Any) -> Any:
            match message:
                case WithFuture():
                    raise RuntimeError("handler bug")
                case _:
                    return super().on_receive(message)

    ref = start(Fails)
    try:
        failed: Future[Any] = Future()
        ref.actor_inbox.put(WithFuture(failed))
        with pytest.raises(RuntimeError, match="handler bug"):
            failed.result(timeout=TIMEOUT)
        assert ref.ask("thread", timeout=TIMEOUT) != threading.get_ident()
    finally:
        stop(ref)


# -- signal handlers and races with the stop -----------------------------------------------


class _HandlerInAppend(collections.deque):  # type: ignore[type-arg]
    """A deque whose next append runs ``handler`` right after appending.

    Python runs a signal handler between two bytecodes of the main thread:
    here, as one would inside PollingInbox.put while it holds its lock.
    """

    handler: Any = None

    def append(self, item: Any) -> None:
        super().append(item)
        handler, self.handler = self.handler, None
        if handler is not None:
            handler()


class _Interruptible(Recorder):
    """A Recorder whose inbox's deque is a `_HandlerInAppend` (white-box)."""

    @staticmethod
    def _create_actor_inbox() -> PollingInbox:
        inbox = PollingInbox()
        inbox._queue = _HandlerInAppend()
        return inbox


def test_a_handler_interrupting_put_can_stop_the_actor_without_deadlock():
    ref = start(_Interruptible)
    inbox = ref.actor_inbox
    queue = inbox._queue
    stopped: list[bool] = []
    started = time.monotonic()
    queue.handler = lambda: stopped.append(ref.stop(timeout=TIMEOUT))
    handled: Future[Any] = Future()
    inbox.put(WithFuture(handled))
    assert stopped == [True]
    assert time.monotonic() - started < TIMEOUT / 2
    assert handled.result(timeout=TIMEOUT) == "handled"
    with pytest.raises(pykka.ActorDeadError):
        inbox.put(WithFuture(Future()))


def test_a_handler_interrupting_put_can_put_again():
    ref = start(_Interruptible)
    try:
        inbox = ref.actor_inbox
        queue = inbox._queue
        queue.handler = lambda: inbox.put(Record(1, 1))
        inbox.put(Record(1, 0))
        seen = ref.ask("seen", timeout=TIMEOUT)
        assert [r.seq for r in seen] == [0, 1]
    finally:
        stop(ref)


def test_puts_racing_the_stop_are_all_handled_or_failed():
    for _ in range(20):
        ref = start(Recorder)
        futures: list[Future[Any]] = []
        refused = []
        go = threading.Barrier(5, timeout=TIMEOUT)

        def putter(
            ref: pykka.ActorRef[Any] = ref,
            futures: list[Future[Any]] = futures,
            refused: list[int] = refused,
            go: threading.Barrier = go,
        ) -> None:
            go.wait()
            for _ in range(200):
                future: Future[Any] = Future()
                try:
                    ref.actor_inbox.put(WithFuture(future))
                except pykka.ActorDeadError:
                    refused.append(1)
                    return
                futures.append(future)

        threads = [threading.Thread(target=putter) for _ in range(4)]
        for thread in threads:
            thread.start()
        go.wait()
        ref.stop(timeout=TIMEOUT)
        for thread in threads:
            thread.join(TIMEOUT)
        for future in futures:
            # Each either ran or failed at the stop: none is left waiting.
            exc = future.exception(timeout=TIMEOUT)
            assert exc is None or isinstance(exc, TransportClosedError)
