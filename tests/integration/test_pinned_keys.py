"""Pinned server keys (issue #12 row 2): a rogue route in the matchmaker gets nothing.

The trusted server runs in a child process; the rogues are real servers of
this process on real TCP sockets, registered in the same file matchmaker
with their own sound key pair ("intruder"), one under the trusted server's
name and one under a new name. The client pins the trusted server's key in
``curve_server_keys_dir``.
"""

from __future__ import annotations

import os
import shutil
import threading
import time

import pytest

import zmqactors as za
from tests.helpers import wait_until

pytestmark = [pytest.mark.integration]

TIMEOUT = 5.0
TOPIC = "pinned"
CALLS = 20


class Rogue:
    def __init__(self) -> None:
        self.seen: list[str] = []
        self.lock = threading.Lock()

    def _note(self, what: str) -> None:
        with self.lock:
            self.seen.append(what)

    def pid(self) -> int:
        self._note("pid")
        return os.getpid()

    def whoami(self) -> str:
        self._note("whoami")
        return "rogue"

    def record(self, value: object) -> None:
        self._note(f"record {value!r}")

    def info(self, publisher_id, event_type, payload, metadata):  # noqa: ARG002 - the signature
        self._note(f"info {payload!r}")


class Heard:
    def __init__(self) -> None:
        self.events: list[object] = []
        self.lock = threading.Lock()

    def info(self, publisher_id, event_type, payload, metadata):  # noqa: ARG002 - the signature
        with self.lock:
            self.events.append(payload)

    def got(self) -> list[object]:
        with self.lock:
            return list(self.events)


@pytest.fixture
def pins(curve_keys):
    """A curve_server_keys_dir trusting the server key pair, under the name "trusted"."""
    directory = curve_keys.directory / "pins"
    directory.mkdir(mode=0o700)
    shutil.copyfile(curve_keys.allowed / "server.key", directory / "trusted.key")
    return directory


def rogue_url(curve_keys, url: str) -> str:
    """A server URL with the intruder's own sound key pair (and the usual allow-list)."""
    return curve_keys.server_url(url, "intruder")


def pinned_url(curve_keys, url: str, pins) -> str:
    return curve_keys.client_url(url) + f"&curve_server_keys_dir={pins}"


def start_rogue(transports, url: str, target: za.Target, endpoint: object) -> za.RPCServer:
    server = za.RPCServer(transports(url), target, [endpoint])
    server.start()
    return server


def untrusted(transport: za.Transport) -> int:
    return transport.stats.snapshot().get("untrusted_routes", 0)


def test_rogue_servers_in_the_matchmaker_receive_nothing(
    curve_keys, pins, matchmaker_url, spawn_server, transports
):
    served = spawn_server(TOPIC, "trusted", "--url", curve_keys.server_url(matchmaker_url))
    same_name, new_name = Rogue(), Rogue()
    rogues = [
        start_rogue(
            transports, rogue_url(curve_keys, matchmaker_url), za.Target(TOPIC, server=name), e
        )
        for name, e in (("trusted", same_name), ("rogue", new_name))
    ]
    try:
        transport = transports(pinned_url(curve_keys, matchmaker_url, pins))
        client = za.RPCClient(transport, za.Target(TOPIC), timeout=TIMEOUT)
        # Every call, to the topic or to the server by name, reaches the trusted process.
        assert {client.call("pid") for _ in range(CALLS)} == {served.proc.pid}
        direct = client.prepare(server="trusted")
        assert {direct.call("pid") for _ in range(CALLS)} == {served.proc.pid}
        for i in range(CALLS):
            client.cast("record", value=i)
        client.prepare(fanout=True).cast("record", value="fanout")
        wait_until(lambda: len(direct.call("recorded")) == CALLS + 1, "the casts", timeout=TIMEOUT)
        # A server name only a rogue registered: no trusted route, so it fails
        # at once instead of waiting out the call's timeout.
        started = time.monotonic()
        with pytest.raises(za.SecurityError, match="not pinned in curve_server_keys_dir"):
            client.prepare(server="rogue").call("whoami")
        assert time.monotonic() - started < TIMEOUT / 2
        with pytest.raises(za.SecurityError):
            client.prepare(server="rogue").cast("record", value="x")
        with pytest.raises(za.NoRespondersError):
            client.prepare(server="nobody").call("whoami")
        assert same_name.seen == new_name.seen == []
        # Each untrusted route is counted once, however often it was skipped.
        assert untrusted(transport) == 2
    finally:
        for rogue in rogues:
            rogue.stop()
            rogue.wait(timeout=TIMEOUT)


def test_without_pins_the_rogue_is_reached(curve_keys, matchmaker_url, spawn_server, transports):
    # The attack the pins stop: the route's key alone is trusted today.
    spawn_server(TOPIC, "trusted", "--url", curve_keys.server_url(matchmaker_url))
    rogue = Rogue()
    server = start_rogue(
        transports,
        rogue_url(curve_keys, matchmaker_url),
        za.Target(TOPIC, server="trusted"),
        rogue,
    )
    try:
        client = za.RPCClient(
            transports(curve_keys.client_url(matchmaker_url)), za.Target(TOPIC), timeout=TIMEOUT
        )
        for _ in range(CALLS):
            client.call("pid")
        assert "pid" in rogue.seen
    finally:
        server.stop()
        server.wait(timeout=TIMEOUT)


def test_notifications_go_only_to_listeners_with_a_pinned_key(
    curve_keys, pins, matchmaker_url, transports
):
    # A listener's route carries its process's key: pinned by key, under any name.
    shutil.copyfile(curve_keys.allowed / "client.key", pins / "listeners.key")
    heard, rogue = Heard(), Rogue()
    target = za.Target("pinned-notifications")
    listeners = [
        za.NotificationListener(transports(url), [target], [endpoint], pool=pool)
        for url, endpoint, pool in (
            (curve_keys.server_url(matchmaker_url, "client"), heard, "good"),
            (rogue_url(curve_keys, matchmaker_url), rogue, "evil"),
        )
    ]
    for listener in listeners:
        listener.start()
    try:
        transport = transports(pinned_url(curve_keys, matchmaker_url, pins))
        notifier = za.Notifier(transport, publisher_id="p", topics=(target.topic,))
        for i in range(CALLS):
            notifier.info("event", {"i": i})
        wait_until(lambda: len(heard.got()) == CALLS, "the notifications", timeout=TIMEOUT)
        assert rogue.seen == []
        assert untrusted(transport) == 1
    finally:
        for listener in listeners:
            listener.stop()
            listener.wait(timeout=TIMEOUT)


def test_pins_without_a_key_pair_are_refused(pins, matchmaker_url, transports):
    transport = transports(
        f"{matchmaker_url}{'&' if '?' in matchmaker_url else '?'}curve_server_keys_dir={pins}"
    )
    client = za.RPCClient(transport, za.Target(TOPIC), timeout=TIMEOUT)
    with pytest.raises(za.SecurityError, match="curve_secret_key_file is not"):
        client.call("whoami")


def test_an_empty_pins_directory_is_refused(curve_keys, matchmaker_url, transports, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir(mode=0o700)
    transport = transports(pinned_url(curve_keys, matchmaker_url, empty))
    client = za.RPCClient(transport, za.Target(TOPIC), timeout=TIMEOUT)
    with pytest.raises(za.SecurityError, match="no server would be trusted"):
        client.call("whoami")
