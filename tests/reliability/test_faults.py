"""Server faults: SIGKILL during a call, SIGSTOP/SIGCONT, a stale registration.

Each server is a ``ledger_server.py`` process on TCP loopback, found through
this test's file matchmaker; the client is this process.
"""

from __future__ import annotations

import signal
import time

import pytest

import zmqactors as za
from tests.helpers import wait_until

pytestmark = pytest.mark.reliability

TOPIC = "ledger"
TIMEOUT = 2.0
# The bound: a call's outcome within its timeout plus half a second.
BOUND = TIMEOUT + 0.5


def late_replies(transport: za.Transport) -> int:
    return transport.stats.snapshot().get("late_replies", 0)


def drained(client: za.RPCClient) -> list[int]:
    """The ids the client's server recorded since the last drain."""
    return [msg_id for msg_id, _ in client.call("drain", limit=1000)]


def test_server_killed_during_a_call_fails_it_then_a_restart_serves(start_server, transport):
    server = start_server("k1")
    # Long enough that the call is still pending when the server dies, even
    # if a loaded machine is slow to start it.
    timeout = 10.0
    client = za.RPCClient(transport, za.Target(TOPIC), timeout=timeout)
    watcher = client.prepare(server="k1")
    assert client.call("pid") == server.pid

    started = time.monotonic()
    future = client.call_async("sleep", seconds=60, id=1)
    wait_until(
        lambda: 1 in drained(watcher), "the slow call reaching the server", timeout=timeout / 2
    )
    server.kill()
    killed = time.monotonic()
    with pytest.raises(za.MessagingTimeout) as info:
        future.result(timeout=timeout + 5)  # a hang would fail here, not block the suite
    failed = time.monotonic()
    assert failed - started < timeout + 0.5
    # The connection drop failed it (outcome unknown: a timeout), not its deadline.
    assert "connection" in str(info.value), info.value
    assert failed - killed < timeout / 2

    restarted = start_server("k1")
    assert restarted.pid != server.pid
    # The very next call reaches the new process: the route cache drops the
    # dead address and looks the topic up again rather than failing.
    assert client.call("pid") == restarted.pid
    value = client.call("work", id=2, addressed="", payload="p2")
    assert value == {"id": 2, "server": "k1", "payload": "p2"}
    assert late_replies(transport) == 0  # the dead call's reply never came, to anyone


def test_stopped_server_calls_time_out_and_late_replies_are_dropped(start_server, transport):
    server = start_server("st1")
    client = za.RPCClient(transport, za.Target(TOPIC), timeout=TIMEOUT)
    direct = client.prepare(server="st1")
    assert direct.call("whoami") == "st1"
    base = late_replies(transport)

    server.signal(signal.SIGSTOP)
    ids = (11, 12, 13)
    started = time.monotonic()
    futures = [client.call_async("work", id=i, addressed="", payload=f"p{i}") for i in ids]
    for future in futures:
        with pytest.raises(za.MessagingTimeout):
            future.result(timeout=BOUND + 5)
    # The kernel keeps a stopped process's TCP connection up: nothing tells
    # the caller, so the deadline does, within its bound.
    elapsed = time.monotonic() - started
    assert TIMEOUT <= elapsed < BOUND

    server.signal(signal.SIGCONT)
    # The stopped server now serves the three requests it had queued; their
    # replies find no caller and are dropped and counted, not handed on.
    wait_until(lambda: late_replies(transport) >= base + len(ids), "three late replies")
    value = direct.call("work", id=14, addressed="st1", payload="p14")
    assert value == {"id": 14, "server": "st1", "payload": "p14"}
    assert sorted(drained(direct)) == [11, 12, 13, 14]
    assert late_replies(transport) == base + len(ids)


def test_stale_registration_costs_a_topic_call_nothing_and_a_direct_call_fails_fast(
    start_server, matchmaker_url
):
    """Decided behaviour for a server that died without unregistering (its TTL not run out).

    A topic call routed to it meets a refused connection: the request never
    left, so it goes once to another server of the topic (issue #20,
    ``retried_not_run``) and succeeds; the address is then left out of every
    answer for ``lookup_cache_ttl`` seconds, so the next topic calls go to
    the live server directly. A call addressed to the dead server by name
    fails fast with `NoRespondersError`, never waiting out its timeout.
    """
    dead = start_server("dead")
    start_server("live")
    dead.kill()  # no unregistration: the file matchmaker still lists it
    cache_ttl = 30.0  # long enough that the address is not retried during the test
    url = f"{matchmaker_url}?lookup_cache_ttl={cache_ttl}"
    timeout = 10.0  # "fails fast" means far below this, on a loaded machine too
    with za.Transport.from_url(url) as transport:
        client = za.RPCClient(transport, za.Target(TOPIC), timeout=timeout)
        outcomes = []
        for _ in range(10):
            started = time.monotonic()
            outcomes.append(client.call("whoami"))
            assert time.monotonic() - started < timeout / 5
        # Calls take the servers in turn: one of the first two was sent to the
        # dead one, refused, and answered by the live one.
        assert outcomes == ["live"] * 10, outcomes
        counts = transport.stats.snapshot()
        assert counts.get("unreachable_servers", 0) == 1, counts
        assert counts.get("retried_not_run", 0) == 1, counts

        direct = client.prepare(server="dead")
        for _ in range(3):
            started = time.monotonic()
            with pytest.raises(za.NoRespondersError):
                direct.call("whoami")
            assert time.monotonic() - started < timeout / 5
