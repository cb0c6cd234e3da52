"""Tests of PollingInbox, Doorbell and SocketActor: one thread serving an inbox and sockets."""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import operator
import os
import select
import threading
import time
import uuid
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

import pykka
import pytest
import zmq

from tests.helpers import wait_until
from zmqactors.actors.base import SocketActor
from zmqactors.actors.doorbell import Doorbell
from zmqactors.actors.inbox import PollingInbox
from zmqactors.errors import TransportClosedError
from zmqactors.net.context import get_context

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.unit

TIMEOUT = 5.0


def readable(fd: int, timeout: float = 0.0) -> bool:
    ready, _, _ = select.select([fd], [], [], timeout)
    return bool(ready)


def inproc_address() -> str:
    return f"inproc://test-inbox-{uuid.uuid4().hex}"


@dataclasses.dataclass(frozen=True)
class Block:
    """Make the actor wait on ``release`` (and say so on ``entered``)."""

    entered: threading.Event
    release: threading.Event


@dataclasses.dataclass(frozen=True)
class WithFuture:
    """A message carrying the caller's future, like the reply-waiter's SendCall."""

    future: Future[Any]


@dataclasses.dataclass(frozen=True)
class Record:
    source: int
    seq: int


class Recorder(SocketActor):
    """Answers asks, records tells, blocks on request; no sockets."""

    actor_name = "recorder"

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[Any] = []
        self.thread_ident: int | None = None

    def on_start(self) -> None:
        self.thread_ident = threading.get_ident()

    def on_receive(self, message: Any) -> Any:
        match message:
            case Block(entered=entered, release=release):
                entered.set()
                release.wait(TIMEOUT)
                return None
            case WithFuture(future=future):
                future.set_result("handled")
                return None
            case "seen":
                return list(self.seen)
            case "thread":
                return threading.get_ident()
            case ("raise", text):
                raise RuntimeError(text)
            case _:
                self.seen.append(message)
                return ("echo", message)


def start(actor_class: type[SocketActor], *args: Any, **kwargs: Any) -> pykka.ActorRef[Any]:
    return actor_class.start(*args, **kwargs)


def stop(ref: pykka.ActorRef[Any]) -> None:
    ref.stop(timeout=TIMEOUT)


# -- doorbell and inbox on their own ----------------------------------------------------


def test_doorbell_rings_clears_and_closes():
    bell = Doorbell()
    try:
        fd = bell.fileno()
        assert not readable(fd)
        bell.ring()
        bell.ring()
        assert readable(fd, TIMEOUT)
        bell.clear()
        assert not readable(fd)
        bell.clear()  # nothing to clear: never blocks
    finally:
        bell.close()
    assert bell._closed
    with pytest.raises(OSError, match="Bad file descriptor"):
        os.fstat(fd)
    bell.close()  # idempotent
    bell.ring()  # ringing a closed bell is harmless


def test_doorbell_rings_from_another_thread():
    bell = Doorbell()
    try:
        ringer = threading.Thread(target=bell.ring)
        ringer.start()
        ringer.join(TIMEOUT)
        assert readable(bell.fileno(), TIMEOUT)
    finally:
        bell.close()


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


# -- sockets and inbox together ------------------------------------------------------------


class PairEcho(SocketActor):
    """Owns a PAIR socket made in on_start; echoes each message back with a count."""

    actor_name = "pair-echo"

    def __init__(self, address: str) -> None:
        super().__init__()
        self.address = address
        self.sock: zmq.Socket[bytes] | None = None
        self.events: list[tuple[str, Any]] = []
        self.owner_thread: int | None = None

    def on_start(self) -> None:
        self.owner_thread = threading.get_ident()
        sock = get_context().socket(zmq.PAIR)
        sock.setsockopt(zmq.LINGER, 0)
        sock.bind(self.address)
        self.sock = sock
        self.watch(sock, self.on_frames)

    def on_frames(self, frames: list[bytes]) -> None:
        assert threading.get_ident() == self.owner_thread
        if frames[0] == b"boom":
            msg = "handler failed on purpose"
            raise RuntimeError(msg)
        self.events.append(("socket", frames[0]))
        assert self.sock is not None
        self.sock.send_multipart([b"echo", frames[0]])

    def on_receive(self, message: Any) -> Any:
        if message == "events":
            return list(self.events)
        if message == "sock":
            return self.sock
        self.events.append(("inbox", message))
        return ("ok", message)

    def close_sockets(self) -> None:
        if self.sock is not None:
            self.sock.close(linger=0)
            self.sock = None


@contextlib.contextmanager
def _paired(
    actor_class: type[SocketActor],
) -> Iterator[tuple[pykka.ActorRef[Any], zmq.Socket[bytes]]]:
    """A started ``actor_class(address)`` and a PAIR socket connected to its socket."""
    address = inproc_address()
    ref = start(actor_class, address)
    peer = get_context().socket(zmq.PAIR)
    peer.setsockopt(zmq.LINGER, 0)
    try:
        # Answered only after on_start: the socket is bound by then.
        assert ref.ask("ready", timeout=TIMEOUT) == ("ok", "ready")
        peer.connect(address)
        yield ref, peer
    finally:
        peer.close(linger=0)
        stop(ref)


@pytest.fixture
def pair_actor():
    with _paired(PairEcho) as pair:
        yield pair


def recv(sock: zmq.Socket[bytes], timeout: float = TIMEOUT) -> list[bytes]:
    if not sock.poll(int(timeout * 1000), zmq.POLLIN):
        pytest.fail("no message on the test socket")
    return sock.recv_multipart(zmq.NOBLOCK)


def test_socket_and_inbox_messages_interleave(pair_actor):
    ref, peer = pair_actor
    rounds = 200
    for i in range(rounds):
        data = b"s%d" % i
        peer.send(data)
        assert ref.ask(i, timeout=TIMEOUT) == ("ok", i)
        assert recv(peer) == [b"echo", data]
    events = ref.ask("events", timeout=TIMEOUT)
    sockets = [e[1] for e in events if e[0] == "socket"]
    inbox = [e[1] for e in events if e[0] == "inbox"]
    assert sockets == [b"s%d" % i for i in range(rounds)]
    assert inbox == ["ready", *range(rounds)]


def test_socket_served_while_the_inbox_is_flooded(pair_actor):
    ref, peer = pair_actor
    stop_flood = threading.Event()

    def flood() -> None:
        n = 0
        while not stop_flood.is_set() and n < 100_000:
            ref.tell(("flood", n))
            n += 1

    flooder = threading.Thread(target=flood)
    flooder.start()
    try:
        for i in range(20):
            peer.send(b"%d" % i)
            assert recv(peer) == [b"echo", b"%d" % i]
    finally:
        stop_flood.set()
        flooder.join(TIMEOUT)
    assert not flooder.is_alive()


def test_exception_in_socket_handler_does_not_kill_the_actor(pair_actor):
    ref, peer = pair_actor
    peer.send(b"boom")
    assert ref.ask("after-boom", timeout=TIMEOUT) == ("ok", "after-boom")
    assert ref.is_alive()
    peer.send(b"fine")
    assert recv(peer) == [b"echo", b"fine"]
    peer.send(b"boom")
    peer.send(b"fine-2")
    assert recv(peer) == [b"echo", b"fine-2"]
    events = ref.ask("events", timeout=TIMEOUT)
    assert ("socket", b"boom") not in events
    assert ("socket", b"fine") in events


# -- timers ------------------------------------------------------------------------------


class Ticker(SocketActor):
    """Runs a timer every ``interval`` seconds once armed; records when it fired."""

    actor_name = "ticker"

    def __init__(self, interval: float, *, armed: bool) -> None:
        super().__init__()
        self.interval = interval
        self.deadline: float | None = None
        self.armed = armed
        self.fired: list[float] = []
        self.handled = 0
        self.handled_at_fire: list[int] = []
        self.fail_first = False

    def on_start(self) -> None:
        if self.armed:
            self.deadline = time.monotonic() + self.interval

    def next_deadline(self) -> float | None:
        return self.deadline

    def on_deadline(self, now: float) -> None:
        assert self.deadline is not None
        assert now >= self.deadline
        self.fired.append(now)
        self.handled_at_fire.append(self.handled)
        self.deadline = now + self.interval
        if self.fail_first and len(self.fired) == 1:
            msg = "timer failed on purpose"
            raise RuntimeError(msg)

    def on_receive(self, message: Any) -> Any:
        match message:
            case "arm":
                self.deadline = time.monotonic() + self.interval
            case "arm-now":
                self.deadline = time.monotonic()
            case "disarm":
                self.deadline = None
            case "fail-first":
                self.fail_first = True
            case "fired":
                return len(self.fired)
            case "handled_at_fire":
                return list(self.handled_at_fire)
            case Block(entered=entered, release=release):
                entered.set()
                release.wait(TIMEOUT)
            case _:
                self.handled += 1
        return None


def test_timer_fires_repeatedly():
    ref = start(Ticker, 0.01, armed=True)
    try:
        wait_until(lambda: ref.ask("fired", timeout=TIMEOUT) >= 5, "5 timer runs", timeout=TIMEOUT)
    finally:
        stop(ref)


def test_timer_armed_by_a_message_while_sleeping_fires():
    ref = start(Ticker, 0.02, armed=False)
    try:
        assert ref.ask("fired", timeout=TIMEOUT) == 0
        ref.tell("arm")
        wait_until(
            lambda: ref.ask("fired", timeout=TIMEOUT) >= 1, "the armed timer", timeout=TIMEOUT
        )
        ref.tell("disarm")
        count = ref.ask("fired", timeout=TIMEOUT)
        # Disarmed: give it several intervals, it must not fire again.
        end = time.monotonic() + 0.2
        while time.monotonic() < end:
            assert ref.ask("fired", timeout=TIMEOUT) == count
            time.sleep(0.01)
    finally:
        stop(ref)


def test_timer_that_raises_keeps_the_actor_and_timer_alive():
    ref = start(Ticker, 0.01, armed=False)
    try:
        ref.tell("fail-first")
        ref.tell("arm")
        wait_until(
            lambda: ref.ask("fired", timeout=TIMEOUT) >= 3, "timer after a failure", timeout=TIMEOUT
        )
        assert ref.is_alive()
    finally:
        stop(ref)


def test_busy_inbox_does_not_starve_timers():
    ref = start(Ticker, 60.0, armed=False)
    entered, release = threading.Event(), threading.Event()
    backlog = 5000
    try:
        ref.tell(Block(entered, release))
        assert entered.wait(TIMEOUT)
        ref.tell("arm-now")  # due as soon as it is handled, with the backlog behind it
        for i in range(backlog):
            ref.tell(i)
        release.set()
        wait_until(
            lambda: ref.ask("handled_at_fire", timeout=TIMEOUT), "the timer", timeout=TIMEOUT
        )
        handled_at_fire = ref.ask("handled_at_fire", timeout=TIMEOUT)
        # The inbox yields to sockets and timers every few dozen envelopes.
        assert handled_at_fire[0] < backlog // 10
    finally:
        release.set()
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
    entered, release = threading.Event(), threading.Event()
    queued: Future[Any] = Future()
    try:
        ref.tell(Block(entered, release))
        assert entered.wait(TIMEOUT)
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
        release.set()
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
    entered, release = threading.Event(), threading.Event()
    queued: Future[Any] = Future()
    try:
        ref.tell(Block(entered, release))
        assert entered.wait(TIMEOUT)
        ref.tell(("raise", "crash on purpose"))  # a tell that raises kills the actor
        ref.tell(WithFuture(queued))
        release.set()
        with pytest.raises(TransportClosedError):
            queued.result(timeout=TIMEOUT)
        wait_until(lambda: not ref.is_alive(), "the crashed actor to stop", timeout=TIMEOUT)
    finally:
        release.set()
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


def test_sockets_are_closed_after_stop():
    address = inproc_address()
    ref = start(PairEcho, address)
    try:
        assert ref.ask("ready", timeout=TIMEOUT) == ("ok", "ready")
        sock = ref.ask("sock", timeout=TIMEOUT)
        assert isinstance(sock, zmq.Socket)
        assert not sock.closed
    finally:
        stop(ref)
    assert sock.closed


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


# -- deferred actions ------------------------------------------------------------------------


class Deferring(PairEcho):
    """A PairEcho that answers through `defer`, and defers actions asked of it."""

    actor_name = "deferring"

    def on_frames(self, frames: list[bytes]) -> None:
        self.defer(self.answer, frames[0])
        self.events.append(("handled", frames[0]))

    def answer(self, data: bytes) -> None:
        self.events.append(("answered", data))
        assert self.sock is not None
        self.sock.send(data)

    def on_receive(self, message: Any) -> Any:
        match message:
            case ("defer", Future() as future):
                self.defer(future.set_result, "ran")
                return None
            case ("defer-raising", Future() as future):
                self.defer(operator.truediv, 1, 0)
                self.defer(future.set_result, "after the failure")
                return None
            case _:
                return super().on_receive(message)


def test_a_deferred_action_runs_after_its_handler_before_the_actor_sleeps():
    with _paired(Deferring) as (ref, peer):
        for i in range(3):
            peer.send(b"%d" % i)
            assert recv(peer) == [b"%d" % i]
        events = [e for e in ref.ask("events", timeout=TIMEOUT) if e[0] != "inbox"]
        assert events == [(what, b"%d" % i) for i in range(3) for what in ("handled", "answered")]


def test_deferred_actions_run_in_order_even_after_one_raises():
    ref = start(Deferring, inproc_address())
    try:
        future: Future[Any] = Future()
        ref.tell(("defer-raising", future))
        assert future.result(timeout=TIMEOUT) == "after the failure"
    finally:
        stop(ref)


def test_deferred_actions_run_before_the_stop():
    ref = start(Deferring, inproc_address())
    future: Future[Any] = Future()
    ref.tell(("defer", future))
    stop(ref)
    assert future.result(timeout=0) == "ran"
