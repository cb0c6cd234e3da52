"""How long a closing reply-waiter keeps sending the casts it holds (`_send_held_casts`).

A process that casts and exits has its held casts sent while their
servers are connected, for at most ``exit_flush_timeout`` in all (a server
behind a flood reads nothing new for a while, then goes on); casts for a
connection that is not up get ``linger``. Once casts went out on a
connection that is up, the ROUTER closes with what is left of that budget
as its linger: ZeroMQ and TCP may still hold thousands of them. The reader here is a
stand-in for the ROUTER: it takes messages at a set pace (by the clock, so
a slow machine changes how many tries it takes, not how many messages go).
"""

from __future__ import annotations

import collections
import time
from types import SimpleNamespace

import pytest

from zmqactors.actors.reply_waiter import ReplyWaiter
from zmqactors.core.stats import Stats

pytestmark = pytest.mark.unit

LINGER = 0.1
FLUSH = 1.0  # exit_flush_timeout


class Reader:
    """Takes ``rate`` messages a second from each backlog, none for the first ``pause`` s."""

    def __init__(self, rate: float, pause: float = 0.0) -> None:
        self.rate = rate
        self.started = time.monotonic() + pause
        self.taken = 0

    def flush(self, conn: SimpleNamespace) -> bool:
        allowed = int((time.monotonic() - self.started) * self.rate) + 1
        moved = False
        while conn.backlog and self.taken < allowed:
            conn.backlog.popleft()
            self.taken += 1
            moved = True
        conn.one_way = conn.one_way or moved
        return moved


def closing(
    held: int, reader: Reader, *, ready: bool = True
) -> tuple[SimpleNamespace, SimpleNamespace]:
    """A stand-in reply-waiter holding ``held`` casts for one connection, up or not."""
    conn = SimpleNamespace(backlog=collections.deque(range(held)), ready=ready, one_way=False)
    waiter = SimpleNamespace(
        _settings=SimpleNamespace(linger=LINGER, exit_flush_timeout=FLUSH),
        _conns={"tcp://server": conn},
        _router=object(),
        _stats=Stats(),
        _flush=reader.flush,
        _drain_monitor=lambda: None,
        log=SimpleNamespace(info=lambda *_args, **_kw: None),
    )
    return waiter, conn


def flush(waiter: SimpleNamespace) -> tuple[int | None, float]:
    started = time.monotonic()
    linger_ms = ReplyWaiter._send_held_casts(waiter)  # type: ignore[arg-type]
    return linger_ms, time.monotonic() - started


def test_casts_sent_on_a_connection_that_is_up_get_the_budget_as_linger():
    # Taken at once, but ZeroMQ (and TCP) may still hold them: a server
    # behind a flood reads them seconds later.
    waiter, conn = closing(10, Reader(rate=1e9))
    linger_ms, took = flush(waiter)
    assert not conn.backlog
    assert (FLUSH - took) * 1000 - 1 <= linger_ms <= FLUSH * 1000


def test_a_connection_that_carried_no_cast_keeps_the_sockets_own_linger():
    # Only calls went out: their callers have their answer (or their
    # timeout), and a hung server must not hold the exit for them.
    waiter, conn = closing(0, Reader(rate=1e9))
    linger_ms, _ = flush(waiter)
    assert linger_ms is None
    assert not conn.one_way


def test_casts_sent_on_a_connection_that_went_down_keep_the_sockets_own_linger():
    waiter, conn = closing(0, Reader(rate=1e9), ready=False)
    conn.one_way = True
    linger_ms, _ = flush(waiter)
    assert linger_ms is None


def test_casts_keep_going_past_linger_while_the_server_reads_them():
    # 150 casts at 1,000 a second: half again longer than linger.
    waiter, conn = closing(150, Reader(rate=1000))
    linger_ms, took = flush(waiter)
    assert not conn.backlog
    assert took > LINGER
    assert waiter._stats.snapshot().get("casts_unsent", 0) == 0
    # ZeroMQ gets what is left of the budget to deliver what it just took.
    assert LINGER * 1000 <= linger_ms <= FLUSH * 1000


def test_a_connected_server_that_reads_nothing_for_a_while_still_gets_them():
    # Behind a flood, the queues before the server drain first: nothing of
    # ours moves for three lingers, then everything does.
    waiter, conn = closing(100, Reader(rate=1000, pause=3 * LINGER))
    linger_ms, took = flush(waiter)
    assert not conn.backlog
    assert took > 3 * LINGER
    assert linger_ms is not None


def test_casts_for_a_connection_that_is_not_up_get_one_linger():
    waiter, conn = closing(150, Reader(rate=1000, pause=60.0), ready=False)
    linger_ms, took = flush(waiter)
    assert linger_ms is None
    assert len(conn.backlog) == 150
    assert waiter._stats.snapshot()["casts_unsent"] == 150
    assert LINGER <= took < FLUSH


def test_a_slow_reader_does_not_hold_the_exit_past_the_budget():
    # 2,000 casts at 1,000 a second would take 2 s: the budget is 1 s.
    waiter, conn = closing(2000, Reader(rate=1000))
    linger_ms, took = flush(waiter)
    assert linger_ms is None
    assert conn.backlog
    assert waiter._stats.snapshot()["casts_unsent"] == len(conn.backlog)
    assert FLUSH <= took < FLUSH + 0.5
