"""actors.base: SocketActor, one thread serving its inbox, its sockets and its timers."""

from __future__ import annotations

import contextlib
import operator
import threading
import time
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

import pytest
import zmq

from tests.helpers import wait_until
from tests.unit.actor_kit import TIMEOUT, Block, inproc_address, start, stop
from zmqactors.actors.base import SocketActor
from zmqactors.net.context import get_context

if TYPE_CHECKING:
    from collections.abc import Iterator

    import pykka

pytestmark = pytest.mark.unit


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
