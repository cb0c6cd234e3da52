"""Redis killed and restarted under traffic (the ``zmq+redis://`` matchmaker).

A real redis-server with persistence off (tests/integration/conftest.py): a
restart loses every registration, as a crash would.
"""

from __future__ import annotations

import threading
import time

import pytest
import structlog

import zmqactors as za
from tests.helpers import wait_until
from zmqactors.matchmaker import create_matchmaker
from zmqactors.options import parse_url
from zmqactors.topics import matchmaker_key

pytestmark = pytest.mark.reliability

TOPIC = "ledger"
SERVER_TTL = 2.0  # the servers' matchmaker_ttl: refreshed every 0.67 s
CALL_TIMEOUT = 5.0
THREADS = 4


class Traffic:
    """Threads calling the topic and one named server until stopped; outcomes counted."""

    def __init__(self, client: za.RPCClient, server: str) -> None:
        self._clients = (client, client.prepare(server=server))
        self._lock = threading.Lock()
        self.ok = 0
        self.errors: list[BaseException] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(i,)) for i in range(THREADS)]

    def _run(self, index: int) -> None:
        seq = 0
        while not self._stop.is_set():
            seq += 1
            msg_id = index * 1_000_000 + seq
            client = self._clients[seq % 2]
            try:
                value = client.call("work", id=msg_id, addressed="", payload=f"p{msg_id}")
            except Exception as exc:  # noqa: BLE001 - counted, asserted by the test
                with self._lock:
                    self.errors.append(exc)
            else:
                assert value["id"] == msg_id
                with self._lock:
                    self.ok += 1

    def count(self) -> int:
        with self._lock:
            return self.ok

    def __enter__(self):
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=CALL_TIMEOUT + 5)


def matchmaker_lines(lines: list[str]) -> list[str]:
    """A server's logged warnings and errors that come from its matchmaker actor."""
    return [line for line in lines if "actor=matchmaker" in line]


def test_redis_killed_and_restarted_under_traffic(start_redis, start_server):
    redis = start_redis()
    url = f"{redis.url}?matchmaker_ttl={SERVER_TTL}"
    backend = create_matchmaker("redis", parse_url(url).matchmaker.location)
    key = matchmaker_key(za.Target(TOPIC))

    def registered() -> set[str]:
        return {route.server for route in backend.lookup(key)}

    first = start_server("r1", url=url)
    # A short lookup cache: the client really asks Redis during the outage.
    # (Its own matchmaker_ttl stays the default: the time it gives servers to
    # register again after Redis returns.)
    client_url = f"{redis.url}?lookup_cache_ttl=0.3"
    with structlog.testing.capture_logs() as logs, za.Transport.from_url(client_url) as transport:
        client = za.RPCClient(transport, za.Target(TOPIC), timeout=CALL_TIMEOUT)
        with Traffic(client, "r1") as traffic:
            wait_until(lambda: traffic.count() >= 100, "100 calls before the outage", timeout=30)

            redis.kill()
            killed = traffic.count()
            outage_started = time.monotonic()

            def noticed() -> bool:
                return transport.stats.snapshot().get("matchmaker_errors", 0) >= 3

            # Several failed refreshes (probed at most once a second), and
            # calls keep going on the cached route all along.
            wait_until(noticed, "the client's matchmaker failing 3 times", timeout=15)
            wait_until(
                lambda: traffic.count() >= killed + 200 and time.monotonic() - outage_started > 2.0,
                "200 calls during the outage",
                timeout=30,
            )
            # A server cannot start while nobody could find it: it fails closed.
            with pytest.raises(RuntimeError, match="before ready"):
                start_server("during", url=url)

            redis.start()  # empty: every registration was lost
            # The running server registers again by itself, within its refresh period.
            wait_until(
                lambda: registered() == {"r1"}, "r1 registered again", timeout=SERVER_TTL + 5
            )
            # A server started now is found by the running client, no restart.
            start_server("r2", url=url)
            wait_until(lambda: registered() == {"r1", "r2"}, "r2 registered", timeout=10)
            wait_until(lambda: client.call("whoami") == "r2", "a call reaching r2", timeout=10)
            after = traffic.count()
            wait_until(lambda: traffic.count() >= after + 50, "calls after the outage", timeout=30)
        assert traffic.errors == [], traffic.errors[:3]
    backend.close()

    # No error storm: the client's matchmaker warned once when Redis failed and
    # once when it answered again, though it failed many times in between.
    failures = transport.stats.snapshot().get("matchmaker_errors", 0)
    warnings = [
        e for e in logs if e.get("actor") == "matchmaker" and e["log_level"] in {"warning", "error"}
    ]
    assert failures >= 3
    assert [e["event"] for e in warnings] == [
        "matchmaker backend failing; using cached routes",
        "matchmaker backend answers again",
    ], warnings
    # The server's matchmaker, refreshing every 0.67 s through the outage, too.
    first.stop()
    logged = [line for line in first.lines if not line.startswith("ready ")]
    assert len(logged) == 2, logged
    assert "backend failing" in logged[0]
    assert "answers again" in logged[1]
    assert matchmaker_lines(logged) == logged
