"""Replies are bound to their call: another server cannot answer it, even knowing its id.

Server A is a real zmqactors server process; server B a hostile raw-pyzmq
process (``forge_server.py``) registered in the same matchmaker, to which the
client is connected. B sends a reply and a heartbeat carrying the id of a call
pending at A: the client drops and counts them, and the call gets A's answer.
"""

from __future__ import annotations

import selectors
import subprocess
import sys
import time
from pathlib import Path

import pytest

import zmqactors as za
from tests.helpers import wait_until
from zmqactors import wire
from zmqactors.matchmaker.file import FileMatchmaker
from zmqactors.options import parse_url
from zmqactors.topics import matchmaker_key

pytestmark = pytest.mark.integration

TOPIC = "bound"
FORGE = Path(__file__).parent / "forge_server.py"


class Forger:
    """The hostile process: commands on stdin, lines on stdout read with a deadline."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(FORGE)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self._selector = selectors.DefaultSelector()
        assert self.proc.stdout is not None
        self._selector.register(self.proc.stdout, selectors.EVENT_READ)

    def expect(self, prefix: str, timeout: float = 10.0) -> str:
        """The next output line, which must start with ``prefix``."""
        assert self.proc.stdout is not None
        if not self._selector.select(timeout):
            pytest.fail(f"the forger printed nothing within {timeout}s (expected {prefix!r})")
        line = self.proc.stdout.readline().strip()
        assert line.startswith(prefix), line
        return line

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def stop(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self._selector.close()
        assert self.proc.stdout is not None
        self.proc.stdout.close()


@pytest.fixture
def forger():
    forger = Forger()
    yield forger
    forger.stop()


def test_another_server_cannot_answer_a_call_even_knowing_its_id(
    spawn_server, matchmaker_url, tmp_path, forger, monkeypatch
):
    spawn_server(TOPIC, "A")
    address = forger.expect("ready ").split()[1]
    # B registers like any server of the topic (the matchmaker is not the
    # defence here: pinned server keys are).
    # Within the matchmaker TTL: the file matchmaker ignores a route that
    # expires further ahead than an honest writer could have written.
    ttl = parse_url(matchmaker_url).matchmaker_ttl
    FileMatchmaker(tmp_path / "mm").register(matchmaker_key(za.Target(TOPIC)), "B", address, ttl)
    ids: list[bytes] = []
    real_new_msg_id = wire.new_msg_id

    def recorded() -> bytes:
        ids.append(real_new_msg_id())
        return ids[-1]

    with za.Transport.from_url(matchmaker_url) as transport:
        client = za.RPCClient(transport, za.Target(TOPIC), timeout=20)
        client.prepare(server="B").cast("hello")  # the client now has a connection to B
        forger.expect("peer")
        monkeypatch.setattr(wire, "new_msg_id", recorded)
        at_a = client.prepare(server="A")
        held = at_a.call_async("hold", seconds=15)
        monkeypatch.undo()
        # Answered after the reply-waiter took the held call (its inbox is in
        # order): the forgery cannot overtake it and pass for a late reply.
        assert at_a.call("add", a=1, b=2) == 3
        # B learns the id (as a server that sees or guesses it would) and answers.
        forger.send(f"forge {ids[-1].hex()}")
        forger.expect("forged")
        wait_until(
            lambda: transport.stats.snapshot().get("misrouted_replies", 0) == 2,
            "the forged reply and heartbeat counted",
        )
        assert not held.done()
        at_a.call("release")
        started = time.monotonic()
        assert held.result(timeout=10) is True  # A's answer, not B's "forged"
        assert time.monotonic() - started < 5
        stats = transport.stats.snapshot()
        assert stats["misrouted_replies"] == 2
        assert stats.get("late_replies", 0) == 0
