"""Back-pressure: fast casters and a slow (or stopped) server, with real server processes.

What happens at the limit (README, "Guarantees"): `cast` and `call` block
while the send queue to the server is full (ZeroMQ's high-water mark, then
``high_water_mark`` more messages held by the client) and raise
`MessagingTimeout` naming the full queue when it stays full for the client's
timeout. Nothing is dropped silently: every cast that returned is delivered
once the server catches up. The server stops reading past 1,000 queued
requests, so its memory is bounded too.
"""

from __future__ import annotations

import functools
import signal
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

import zmqactors as za
from tests.helpers import wait_until

if TYPE_CHECKING:
    from collections.abc import Callable

pytestmark = pytest.mark.reliability

ACK_SERVER = Path(__file__).parent / "ack_server.py"
HWM = 50
PAD = b"x" * 32 * 1024  # large messages fill the queues (and the memory) fast
MIB = 1024 * 1024


def rss(pid: int | str = "self", field: str = "VmRSS") -> int:
    """Resident memory of a process in bytes (``VmHWM``: its peak)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    msg = f"no {field} for process {pid}"
    raise AssertionError(msg)


@pytest.fixture
def url(matchmaker_url: str) -> str:
    return f"{matchmaker_url}?high_water_mark={HWM}"


@pytest.fixture
def spawn(url: str, spawn_server: Callable[..., Any]) -> Callable[..., Any]:
    """Start ``ack_server.py`` processes on ``url`` (``spawn_server``'s)."""
    return functools.partial(spawn_server, script=ACK_SERVER, url=url)


def test_at_the_limit_cast_and_call_raise_naming_the_full_queue_and_nothing_sent_is_lost(
    url, spawn
):
    server = spawn("bp-stop", "node-1", "--executor-size", "1")
    with za.Transport.from_url(url) as transport:
        client = za.RPCClient(transport, za.Target("bp-stop"), timeout=0.5)
        assert client.call("count") == 0
        server.signal(signal.SIGSTOP)  # reads nothing: every queue on the way fills
        before = rss()
        peak = before
        accepted = 0
        error: za.MessagingTimeout | None = None
        for i in range(20_000):  # 640 MB if nothing pushed back
            try:
                client.cast("record", value=i, pad=PAD)
            except za.MessagingTimeout as exc:
                error = exc
                break
            accepted += 1
            if i % 100 == 0:
                peak = max(peak, rss())
        assert error is not None, "20,000 casts of 32 KiB to a stopped server all accepted"
        assert "send queue" in str(error)
        assert "full" in str(error)
        # Still full: the next cast and a call fail the same way, never silently.
        with pytest.raises(za.MessagingTimeout, match="full"):
            client.cast("record", value=-1, pad=PAD)
        with pytest.raises(za.MessagingTimeout, match="full"):
            client.call("record", value="call")
        peak = max(peak, rss())
        assert peak - before < 50 * MIB, f"sender grew by {(peak - before) / MIB:.1f} MiB"
        assert transport.stats.snapshot().get("send_queue_full", 0) >= 1

        server.signal(signal.SIGCONT)
        catch_up = client.prepare(timeout=30)
        wait_until(
            lambda: catch_up.call("count") >= accepted, "the server catching up", timeout=60.0
        )
        recorded = catch_up.call("recorded")
    # Every cast that returned arrived, once; the refused cast and call did not.
    assert sorted(recorded) == list(range(accepted))


def test_slow_server_fast_casters_memory_bounded_on_both_sides_nothing_lost(url, spawn):
    server = spawn("bp-slow", "node-1", "--executor-size", "1")
    threads, per_thread = 4, 1000  # 4,000 casts of 32 KiB: 128 MiB in all
    with za.Transport.from_url(url) as transport:
        client = za.RPCClient(transport, za.Target("bp-slow"), timeout=60)
        assert client.call("count") == 0
        client_before, server_before = rss(), rss(server.proc.pid)
        peaks = [client_before]
        failures: list[BaseException] = []

        def caster(n: int) -> None:
            try:
                for i in range(per_thread):
                    client.cast("record", value=f"{n}-{i}", seconds=0.001, pad=PAD)
                    if i % 100 == 0:
                        peaks.append(rss())
            except BaseException as exc:  # noqa: BLE001 - reported below
                failures.append(exc)

        workers = [threading.Thread(target=caster, args=(n,)) for n in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=120)
        assert not any(w.is_alive() for w in workers)
        assert failures == []
        # The casters outran the server: the client's queue was full at times.
        assert transport.stats.snapshot().get("send_queue_full", 0) >= 1
        wait_until(
            lambda: client.call("count") >= threads * per_thread,
            "every cast delivered",
            timeout=60.0,
        )
        recorded = client.call("recorded")
        server_peak = rss(server.proc.pid, "VmHWM")
    assert max(peaks) - client_before < 50 * MIB
    # The poller holds at most 1,000 requests (32 MiB here) before it stops reading.
    assert server_peak - server_before < 100 * MIB
    expected = {f"{n}-{i}" for n in range(threads) for i in range(per_thread)}
    assert len(recorded) == len(expected)
    assert set(recorded) == expected


def test_closing_the_transport_wakes_a_caller_blocked_at_a_full_queue(url, spawn):
    server = spawn("bp-close", "node-1", "--executor-size", "1")
    transport = za.Transport.from_url(url)
    try:
        client = za.RPCClient(transport, za.Target("bp-close"), timeout=0.5)
        assert client.call("count") == 0
        server.signal(signal.SIGSTOP)
        for i in range(20_000):  # fill every queue on the way
            try:
                client.cast("record", value=i, pad=PAD)
            except za.MessagingTimeout:
                break
        else:
            pytest.fail("20,000 casts of 32 KiB to a stopped server all accepted")
        # A caller that would wait a minute for room is woken by close().
        patient = client.prepare(timeout=60)
        outcome: list[BaseException] = []
        started = threading.Event()

        def cast_and_wait() -> None:
            started.set()
            try:
                patient.cast("record", value="late", pad=PAD)
            except BaseException as exc:  # noqa: BLE001 - asserted below
                outcome.append(exc)

        caller = threading.Thread(target=cast_and_wait)
        caller.start()
        assert started.wait(10)
        transport.close()
        caller.join(15)  # well under the caller's 60 s timeout
        assert not caller.is_alive(), "close() left a caller blocked at the full queue"
        assert len(outcome) == 1
        assert isinstance(outcome[0], za.TransportClosedError), outcome
    finally:
        transport.close()
        server.signal(signal.SIGCONT)
