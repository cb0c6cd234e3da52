"""Children, and the parent, exit promptly however they leave: nothing waits on ZeroMQ or actors."""

from __future__ import annotations

import json
import select
import subprocess
import sys
import threading
import time

import pytest

import zmqactors as za

pytestmark = pytest.mark.fork

TIMEOUT = 10.0
EXPECTED = {"sys.exit": 7, "os._exit": 8, "exception": 1, "return": 0}


@pytest.mark.parametrize("use", ["used", "untouched"])
@pytest.mark.parametrize("mode", list(EXPECTED))
def test_child_exits_promptly(mode, use, matchmaker_url, kit):
    """The child leaves by ``mode`` with live actors, a running server and a call in flight."""
    started = time.monotonic()
    done = kit.run_python(str(kit.SCENARIOS), "child-exit", matchmaker_url, mode, use)
    elapsed = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.splitlines()[-1])
    assert report["child"] == EXPECTED[mode], done.stderr
    assert report["seconds"] < TIMEOUT
    assert report["in_flight"] == 0.5
    # The parent ended without close(), with a server running and a call in flight.
    assert elapsed < TIMEOUT
    if mode == "exception":
        assert "the child fails on purpose" in done.stderr
    else:
        assert "Traceback" not in done.stderr


LEFT_OPEN = """
import sys
import zmq
import zmqactors as za
from zmqactors.net.context import get_context

class Echo:
    def echo(self, value):
        return value

with za.Transport.from_url(sys.argv[1]) as transport:
    with za.RPCServer(transport, za.Target("exit-open", server="s"), [Echo()]):
        client = za.RPCClient(transport, za.Target("exit-open"), timeout=10)
        assert client.call("echo", value=1) == 1
# A socket on the process's context that nobody closes: the exit flush must
# not wait for it (Python 3.12+ starts no thread at exit, so no timer can).
leaked = get_context().socket(zmq.DEALER)
print("leaving")
"""


def test_a_socket_left_open_does_not_hold_the_exit(matchmaker_url, kit):
    started = time.monotonic()
    done = kit.run_python("-c", LEFT_OPEN, matchmaker_url, timeout=TIMEOUT + 20)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "leaving"
    assert "Traceback" not in done.stderr
    assert time.monotonic() - started < TIMEOUT


CAST_AND_LEAVE = """
import sys
import zmqactors as za

# Opened and never closed: the process simply ends after its last cast.
transport = za.Transport.from_url(sys.argv[1])
client = za.RPCClient(transport, za.Target("exit-casts"))
for i in range(int(sys.argv[2])):
    client.cast("count", i=i, pad="x" * 512)
print("sent")
"""


class Counter:
    def __init__(self) -> None:
        self.seen: set[int] = set()

    def count(self, i: int, pad: str) -> None:
        del pad
        self.seen.add(i)


def test_casts_sent_just_before_an_exit_without_close_are_delivered(matchmaker_url, kit):
    counter = Counter()
    with (
        za.Transport.from_url(matchmaker_url) as transport,
        za.RPCServer(transport, za.Target("exit-casts", server="s"), [counter]),
    ):
        done = kit.run_python("-c", CAST_AND_LEAVE, matchmaker_url, "3000", timeout=TIMEOUT + 20)
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines()[-1] == "sent"
        deadline = time.monotonic() + TIMEOUT
        while len(counter.seen) < 3000 and time.monotonic() < deadline:
            time.sleep(0.01)  # polling the counter with a deadline
        assert len(counter.seen) == 3000


FLOOD_AND_LEAVE = """
import sys
import zmqactors as za

# Never closed: the process ends after its last cast, most of its casts still
# queued in ZeroMQ for a server that has stopped reading.
transport = za.Transport.from_url(sys.argv[1])
client = za.RPCClient(transport, za.Target("exit-flood"), timeout=30)
pad = "x" * 16384
for i in range(int(sys.argv[2])):
    client.cast("count", i=i, pad=pad)
print("sent", flush=True)
"""


class Stalled(Counter):
    """Reads nothing until ``resume`` is set: its workers wait, so its poller stops reading."""

    def __init__(self) -> None:
        super().__init__()
        self.resume = threading.Event()

    def count(self, i: int, pad: str) -> None:
        self.resume.wait(timeout=60)
        super().count(i, pad)


def _read_line(proc: subprocess.Popen[str], timeout: float) -> str:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    assert ready, "the client printed nothing in time"
    return proc.stdout.readline().strip()


def test_casts_a_server_reads_long_after_the_client_exits_are_delivered(matchmaker_url, with_query):
    # The server stalls for 20 lingers of the client's, its queues small: most
    # of the 3,000 casts are still in the client's ZeroMQ queue when the
    # client's exit begins. They are delivered once the server reads again,
    # within exit_flush_timeout (30 s), not dropped after linger.
    stalled, count, stall = Stalled(), 3000, 2.0
    server_url = with_query(matchmaker_url, "high_water_mark=100&max_queued_per_client=100")
    with (
        za.Transport.from_url(server_url) as transport,
        za.RPCServer(transport, za.Target("exit-flood", server="s"), [stalled]),
    ):
        client_url = with_query(matchmaker_url, "linger=0.1")
        proc = subprocess.Popen(
            [sys.executable, "-c", FLOOD_AND_LEAVE, client_url, str(count)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert _read_line(proc, TIMEOUT * 3) == "sent"
            # The stall itself: the server reads nothing for this long.
            stalled.resume.wait(timeout=stall)
            stalled.resume.set()
            assert proc.wait(timeout=TIMEOUT * 3) == 0
        finally:
            proc.kill()
            _, stderr = proc.communicate(timeout=TIMEOUT)
        assert "Traceback" not in stderr
        deadline = time.monotonic() + TIMEOUT
        while len(stalled.seen) < count and time.monotonic() < deadline:
            time.sleep(0.01)  # polling the counter with a deadline
        assert len(stalled.seen) == count
