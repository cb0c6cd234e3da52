"""A server under overload, against real server processes (issue #19, items 6 and 7).

- Deadlines: a call whose caller has given up while it waited in the
  server's queue is dropped unrun (its side effect never happens) and counted.
- Fairness: one client's backlog does not starve another client.
- Bounds: a client past its per-client bound gets `ServerBusyError` at once,
  not a timeout, while another client is still served.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import pytest

import zmqactors as za
from tests.helpers import wait_until

if TYPE_CHECKING:
    import concurrent.futures

pytestmark = pytest.mark.integration

TIMEOUT = 20.0


def outcome(future: concurrent.futures.Future[object]) -> object:
    """The result or the exception of a settled future."""
    error = future.exception(timeout=TIMEOUT)
    return error if error is not None else future.result(timeout=0)


def test_calls_that_expire_in_the_queue_never_run_and_are_counted(spawn_server, transport):
    spawn_server("deadline", "node-1", "--executor-size", "1")
    client = za.RPCClient(transport, za.Target("deadline", server="node-1"), timeout=TIMEOUT)
    # The one worker is held for 1.5 s; everything below queues behind it.
    held = client.call_async("hold", seconds=1.5)
    hasty = client.prepare(timeout=0.3)
    expired = [hasty.call_async("record", value=f"late-{i}") for i in range(20)]
    patient = client.call_async("record", value="patient")
    for future in expired:
        assert isinstance(outcome(future), za.MessagingTimeout)
    assert held.result(timeout=TIMEOUT) is False  # held its full time: nothing ran meanwhile
    assert patient.result(timeout=TIMEOUT) is None
    # The caller's deadline passed before a worker was free: not one side effect.
    assert client.call("recorded") == ["patient"]
    assert client.call("stats").get("expired_dropped", 0) == 20


def test_one_clients_backlog_does_not_starve_another(spawn_server, matchmaker_url):
    spawn_server("fair", "node-1", "--executor-size", "2")
    target = za.Target("fair", server="node-1")
    with (
        za.Transport.from_url(matchmaker_url) as greedy_side,
        za.Transport.from_url(matchmaker_url) as polite_side,
    ):
        greedy = za.RPCClient(greedy_side, target, timeout=3.0)
        backlog = [greedy.call_async("sleep", seconds=0.1) for _ in range(400)]
        # 400 slow calls (20 s of work for two workers) are queued at the server.
        wait_until(backlog[0].done, "the backlog to start", timeout=TIMEOUT)
        polite = za.RPCClient(polite_side, target, timeout=3.0)
        started = time.monotonic()
        assert polite.call("add", a=1, b=2) == 3
        waited = time.monotonic() - started
        # Round robin over clients: behind at most one slow call per worker.
        assert waited < 1.0, f"the polite client waited {waited:.2f}s behind the backlog"
        # The backlog's callers give up at 3 s; the server drops what they gave up on
        # as its workers reach it (polite's own calls take the worker kept free for it).
        outcomes = [outcome(f) for f in backlog]
        assert sum(isinstance(o, za.MessagingTimeout) for o in outcomes) > 300
        wait_until(
            lambda: polite.call("stats").get("expired_dropped", 0) > 0,
            "the server to drop an expired call",
            timeout=TIMEOUT,
            interval=0.05,
        )


def test_past_its_bound_a_client_is_told_busy_at_once_and_another_is_served(
    spawn_server, matchmaker_url, with_query
):
    server_url = with_query(matchmaker_url, "max_queued_per_client=5")
    spawn_server("busy", "node-1", "--executor-size", "2", url=server_url)
    target = za.Target("busy", server="node-1")
    with (
        za.Transport.from_url(matchmaker_url) as greedy_side,
        za.Transport.from_url(matchmaker_url) as polite_side,
    ):
        greedy = za.RPCClient(greedy_side, target, timeout=TIMEOUT)
        started = time.monotonic()
        futures = [greedy.call_async("sleep", seconds=0.3) for _ in range(40)]
        # Two run, five wait: the other 33 are refused at once, long before
        # the 20 s timeout and before the first accepted call is done.
        wait_until(lambda: sum(f.done() for f in futures) >= 33, "the refusals", timeout=TIMEOUT)
        answered_in = time.monotonic() - started
        busy = [f for f in futures if f.done() and isinstance(f.exception(), za.ServerBusyError)]
        assert len(busy) >= 33, [outcome(f) for f in futures if f.done()][:3]
        assert answered_in < 2.0
        assert "max_queued_per_client" in str(busy[0].exception())
        polite = za.RPCClient(polite_side, target, timeout=5.0)
        assert polite.call("add", a=2, b=3) == 5
        accepted = [outcome(f) for f in futures if f not in busy]
        assert accepted == [0.3] * len(accepted)
        assert polite.call("stats").get("busy_refused", 0) == len(busy)


def test_casts_past_the_bound_pause_the_reading_and_none_is_lost(
    spawn_server, matchmaker_url, with_query, transport
):
    # Casts cannot be told busy: the server stops reading until the queue
    # halves, and the sender's cast() waits instead of losing them.
    server_url = with_query(matchmaker_url, "max_queued_per_client=2")
    spawn_server("paced", "node-1", "--executor-size", "1", url=server_url)
    target = za.Target("paced", server="node-1")
    client = za.RPCClient(transport, target, timeout=TIMEOUT)
    for i in range(300):
        client.cast("record", value=i)
    with za.Transport.from_url(matchmaker_url) as other_side:
        # Another client: this one's queue is full of casts (a call from it may be busy).
        checker = za.RPCClient(other_side, target, timeout=TIMEOUT)
        wait_until(lambda: len(checker.call("recorded")) == 300, "every cast", timeout=TIMEOUT)
        assert checker.call("recorded") == list(range(300))
        stats = checker.call("stats")
    assert stats.get("reads_paused", 0) > 0
    assert stats.get("busy_refused", 0) == 0
