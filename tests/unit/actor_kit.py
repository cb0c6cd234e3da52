"""What the tests of the actor base, its inbox and doorbell share: a plain actor, timeouts."""

from __future__ import annotations

import contextlib
import dataclasses
import select
import threading
import uuid
from typing import TYPE_CHECKING, Any

from zmqactors.actors.base import SocketActor

if TYPE_CHECKING:
    from collections.abc import Iterator
    from concurrent.futures import Future

    import pykka

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


@contextlib.contextmanager
def blocked(ref: pykka.ActorRef[Any]) -> Iterator[threading.Event]:
    """Hold ``ref``'s actor in a `Block` for the ``with`` block; yield the event releasing it.

    Messages told inside the block queue behind the `Block`; leaving the block
    releases the actor, should the test not have done so itself.
    """
    entered, release = threading.Event(), threading.Event()
    try:
        ref.tell(Block(entered, release))
        assert entered.wait(TIMEOUT)
        yield release
    finally:
        release.set()
