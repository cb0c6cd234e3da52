"""The Redis and Sentinel matchmakers against real redis-server processes on TCP loopback.

First the backend on its own (the same contract as the memory and file
backends, plus what only Redis does), then servers in child processes found
through Redis: calls, a stopped and a killed server, a Redis restart while
calls continue, and Sentinel.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import pytest
import redis
import structlog

import zmqactors as za
from tests.discovery_checks import (
    check_calls_between_processes,
    check_start_and_stop_seen_at_once,
)
from tests.helpers import wait_until
from zmqactors.errors import ConfigurationError
from zmqactors.matchmaker import RedisAccess, Route, create_matchmaker
from zmqactors.matchmaker.redis import PREFIX, RedisMatchmaker, SentinelMatchmaker
from zmqactors.options import parse_url
from zmqactors.topics import matchmaker_key

pytestmark = pytest.mark.integration

KEY = "default/compute"
LONG_TTL = 60.0
TOPIC = "calc.redis"
SERVER_TTL = 2.0  # matchmaker_ttl of the server processes: refreshed every 0.67 s
CALL_TIMEOUT = 5.0


def addresses(routes: tuple[Route, ...]) -> list[tuple[str, str]]:
    return [(route.server, route.address) for route in routes]


def server_routes(backend: RedisMatchmaker, server: str) -> list[Route]:
    return [r for r in backend.lookup(matchmaker_key(za.Target(TOPIC))) if r.server == server]


@pytest.fixture
def backend(redis_server):
    mm = create_matchmaker("redis", parse_url(redis_server.url).matchmaker.location)
    assert isinstance(mm, RedisMatchmaker)
    yield mm
    mm.close()


@pytest.fixture
def matchmaker_url(redis_server, on_loopback) -> str:
    """Servers started by ``spawn_server`` register in this test's Redis, with a short TTL.

    Redis and the servers listen on `loopback`.
    """
    return on_loopback(f"{redis_server.url}?matchmaker_ttl={SERVER_TTL}")


# --- the backend ---------------------------------------------------------------------


def test_register_lookup_unregister(backend: RedisMatchmaker) -> None:
    assert backend.lookup(KEY) == ()
    before = time.time()
    backend.register(KEY, "node-1", "tcp://127.0.0.1:5555", LONG_TTL)
    (route,) = backend.lookup(KEY)
    # Expiries are kept on Redis's clock and converted: they still bracket
    # this host's time.time() exactly, to the microsecond.
    assert before + LONG_TTL <= route.expires <= time.time() + LONG_TTL
    assert addresses((route,)) == [("node-1", "tcp://127.0.0.1:5555")]

    backend.unregister(KEY, "node-1", "tcp://127.0.0.1:6666")  # absent: not an error
    backend.unregister("other/compute", "node-1", "tcp://127.0.0.1:5555")
    assert len(backend.lookup(KEY)) == 1
    backend.unregister(KEY, "node-1", "tcp://127.0.0.1:5555")
    assert backend.lookup(KEY) == ()
    assert backend.client.exists(PREFIX + KEY) == 0  # the last route took its set along


def test_sorted_refreshed_without_duplicates_and_keys_isolated(backend: RedisMatchmaker) -> None:
    routes = [
        ("node-b", "tcp://127.0.0.1:2"),
        ("node-a", "tcp://127.0.0.1:9"),
        ("node-a", "tcp://127.0.0.1:10"),
        ("node-b", "tcp://127.0.0.1:1"),
    ]
    for server, address in routes:
        backend.register(KEY, server, address, 5.0)
    first = backend.lookup(KEY)
    assert addresses(first) == sorted(routes)
    backend.register(KEY, "node-a", "tcp://127.0.0.1:9", LONG_TTL)
    second = {(r.server, r.address): r.expires for r in backend.lookup(KEY)}
    assert len(second) == len(routes)
    assert second[("node-a", "tcp://127.0.0.1:9")] > first[1].expires + LONG_TTL - 6.0

    # Glob characters, separators and long names stay apart (the keys are
    # not patterns; SCAN in entries() matches only our prefix).
    keys = ["default/a", "default/a.b", "other/a", "default/A", "default/*", "default/[a]?"]
    long_name = "x" * 255
    for index, key in enumerate([*keys, f"{long_name}/{long_name}"]):
        backend.register(key, f"server-{index}", f"tcp://[::1]:{index}", LONG_TTL)
    for index, key in enumerate([*keys, f"{long_name}/{long_name}"]):
        assert addresses(backend.lookup(key)) == [(f"server-{index}", f"tcp://[::1]:{index}")]


def test_expired_routes_are_hidden_and_their_set_expires(backend: RedisMatchmaker) -> None:
    registered_at = time.monotonic()
    backend.register(KEY, "short", "tcp://127.0.0.1:1", 0.2)
    backend.register(KEY, "long", "tcp://127.0.0.1:2", LONG_TTL)
    if time.monotonic() - registered_at < 0.2:
        assert len(backend.lookup(KEY)) == 2
    wait_until(
        lambda: addresses(backend.lookup(KEY)) == [("long", "tcp://127.0.0.1:2")],
        "the short route expires",
        timeout=5.0,
    )
    # A shorter registration never shortens the set's life below a longer one's.
    backend.register(KEY, "short", "tcp://127.0.0.1:1", 0.2)
    assert backend.client.pttl(PREFIX + KEY) > (LONG_TTL - 5.0) * 1000

    # A key whose routes all expired disappears from Redis by itself.
    backend.register("default/gone", "node-1", "tcp://127.0.0.1:3", 0.1)
    assert 0 < backend.client.pttl(PREFIX + "default/gone") <= 100
    wait_until(
        lambda: backend.client.exists(PREFIX + "default/gone") == 0, "the set expires", timeout=5.0
    )
    # ...and comes back when registered again.
    backend.register("default/gone", "node-1", "tcp://127.0.0.1:3", LONG_TTL)
    assert addresses(backend.lookup("default/gone")) == [("node-1", "tcp://127.0.0.1:3")]


@pytest.mark.parametrize("ttl", [0, -1.0, float("nan"), float("inf")])
def test_register_refuses_a_bad_ttl(backend: RedisMatchmaker, ttl: float) -> None:
    with pytest.raises(ValueError, match="ttl"):
        backend.register(KEY, "node-1", "tcp://127.0.0.1:1", ttl)
    assert backend.lookup(KEY) == ()


def test_entries_list_every_live_route_and_skip_foreign_data(backend: RedisMatchmaker) -> None:
    backend.register("default/b", "node-2", "tcp://127.0.0.1:2", LONG_TTL)
    backend.register("default/a", "node-1", "tcp://127.0.0.1:1", LONG_TTL)
    backend.register("default/a", "node-0", "tcp://127.0.0.1:0", 0.05)
    client = backend.client
    client.set(PREFIX + "not-a-set", "x")
    client.zadd(PREFIX + "default/a", {b"not json": time.time() * 1000 + 60_000})
    client.set("someone-else:key", "x")
    wait_until(lambda: len(backend.lookup("default/a")) == 1, "node-0 expires", timeout=5.0)

    entries = backend.entries()
    assert [(key, route.server, route.address) for key, route in entries] == [
        ("default/a", "node-1", "tcp://127.0.0.1:1"),
        ("default/b", "node-2", "tcp://127.0.0.1:2"),
    ]


def test_concurrent_threads_lose_no_route(backend: RedisMatchmaker) -> None:
    def register(thread: int) -> None:
        for index in range(25):
            backend.register(KEY, f"node-{thread}", f"tcp://127.0.0.1:{index}", LONG_TTL)

    threads = [threading.Thread(target=register, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
        assert not thread.is_alive()
    assert len(backend.lookup(KEY)) == 200


def test_a_down_redis_fails_fast_and_the_backend_recovers(
    backend: RedisMatchmaker, redis_server
) -> None:
    backend.register(KEY, "node-1", "tcp://127.0.0.1:1", LONG_TTL)
    redis_server.kill()
    for operation in (
        lambda: backend.lookup(KEY),
        lambda: backend.register(KEY, "node-1", "tcp://127.0.0.1:1", LONG_TTL),
        lambda: backend.unregister(KEY, "node-1", "tcp://127.0.0.1:1"),
    ):
        started = time.monotonic()
        with pytest.raises(redis.ConnectionError):
            operation()
        assert time.monotonic() - started < 1.0
    # The same backend works once Redis is back: its pooled connections were
    # closed by the crash and the new server has no scripts loaded (NOSCRIPT).
    redis_server.start()
    assert backend.lookup(KEY) == ()  # no persistence: the crash lost the route
    backend.register(KEY, "node-1", "tcp://127.0.0.1:1", LONG_TTL)
    assert len(backend.lookup(KEY)) == 1


def test_password_from_the_url(start_redis) -> None:
    server = start_redis("--requirepass", "s3 cret@:/")
    url = f"zmq+redis://:s3%20cret%40%3A%2F@127.0.0.1:{server.port}/2"
    spec = parse_url(url).matchmaker
    good = create_matchmaker(spec.kind, spec.location, spec.password)
    good.register(KEY, "node-1", "tcp://127.0.0.1:1", LONG_TTL)
    assert len(good.lookup(KEY)) == 1
    assert server.client().zcard(PREFIX + KEY) == 0  # it went to database 2
    assert "s3" not in repr(good)
    good.close()

    wrong = create_matchmaker("redis", spec.location, "wrong")
    with pytest.raises(redis.AuthenticationError):
        wrong.lookup(KEY)
    wrong.close()


@pytest.mark.parametrize(
    ("kind", "location"),
    [
        ("redis", "127.0.0.1:6379"),
        ("redis", "127.0.0.1:99999/0"),
        ("redis", ":6379/0"),
        ("redis", "127.0.0.1:x/0"),
        ("redis", "[::1/0"),
        ("sentinel", "127.0.0.1:26379"),
        ("sentinel", "127.0.0.1:26379/"),
        ("sentinel", "/mymaster"),
        ("sentinel", "127.0.0.1:0/mymaster"),
    ],
)
def test_factory_refuses_a_bad_location(kind: str, location: str) -> None:
    with pytest.raises(ConfigurationError, match=r"location|port|host"):
        create_matchmaker(kind, location)


def test_factory_parses_what_parse_url_writes() -> None:
    redis_mm = create_matchmaker("redis", parse_url("zmq+redis://[::1]:7000/3").matchmaker.location)
    assert repr(redis_mm) == "RedisMatchmaker(redis://[::1]:7000/3)"
    spec = parse_url("zmq+sentinel://h1,[::1]:26380/my.master").matchmaker
    sentinel_mm = create_matchmaker(spec.kind, spec.location)
    assert isinstance(sentinel_mm, SentinelMatchmaker)
    assert repr(sentinel_mm) == "SentinelMatchmaker(sentinel://h1:26379,[::1]:26380/my.master)"
    for mm in (redis_mm, sentinel_mm):
        mm.close()


def test_without_redis_py_the_factory_names_the_extra() -> None:
    code = (
        "import sys; sys.modules['redis'] = None\n"  # makes `import redis` fail
        "import zmqactors as za\n"
        "try:\n"
        "    za.Transport.from_url('zmq+sentinel://127.0.0.1/m')\n"
        "except za.ConfigurationError as exc:\n"
        "    print(exc)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=True
    )
    assert "zmqactors[redis]" in result.stdout


# --- servers in other processes, found through Redis -------------------------------


@pytest.mark.both_families
def test_calls_between_processes_through_redis(
    spawn_server, matchmaker_url, backend, loopback
) -> None:
    proc = spawn_server(TOPIC, "node-1")
    spawn_server(TOPIC, "node-2")
    assert proc.address.startswith(
        f"tcp://[{loopback}]:" if ":" in loopback else "tcp://127.0.0.1:"
    )
    assert addresses(tuple(server_routes(backend, "node-1"))) == [("node-1", proc.address)]
    check_calls_between_processes(matchmaker_url, TOPIC)


def test_cli_targets_lists_what_redis_holds(spawn_server, redis_server) -> None:
    proc = spawn_server(TOPIC, "node-1")
    result = subprocess.run(
        [sys.executable, "-m", "zmqactors.cli", "targets", "--url", redis_server.url, "--json"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(row["server"], row["address"]) for row in rows] == [("node-1", proc.address)]


def test_a_stopped_server_unregisters_at_once(spawn_server, backend) -> None:
    proc = spawn_server(TOPIC, "node-1")
    assert len(server_routes(backend, "node-1")) == 1
    assert proc.stop() == 0
    assert server_routes(backend, "node-1") == []


def test_a_killed_server_ages_out_after_its_ttl(spawn_server, matchmaker_url, backend) -> None:
    proc = spawn_server(TOPIC, "node-1")
    proc.proc.kill()
    proc.proc.wait(timeout=10)
    killed_at = time.monotonic()
    # Refreshed every TTL/3, so it had at least 2/3 of its TTL left.
    assert len(server_routes(backend, "node-1")) == 1
    took = wait_until(
        lambda: server_routes(backend, "node-1") == [],
        "the route ages out",
        timeout=SERVER_TTL + 1.0,
    )
    assert took > SERVER_TTL / 3
    assert time.monotonic() - killed_at <= SERVER_TTL + 1.0
    # A client that starts now finds nobody and says so at once.
    with za.Transport.from_url(matchmaker_url) as transport:
        started = time.monotonic()
        with pytest.raises(za.NoRespondersError):
            za.RPCClient(transport, za.Target(TOPIC), timeout=CALL_TIMEOUT).call("whoami")
        assert time.monotonic() - started < 1.0


def test_calls_continue_across_a_redis_restart(
    spawn_server, matchmaker_url, redis_server, backend
) -> None:
    spawn_server(TOPIC, "node-1")
    # A short lookup cache, so the client really asks Redis during the outage.
    client_url = f"{matchmaker_url}&lookup_cache_ttl=0.2"
    with structlog.testing.capture_logs() as logs, za.Transport.from_url(client_url) as transport:
        client = za.RPCClient(transport, za.Target(TOPIC), timeout=CALL_TIMEOUT)
        direct = client.prepare(server="node-1")
        assert client.call("add", a=1, b=2) == 3

        redis_server.kill()
        # Both the client's refreshes and the server's heartbeats fail for a
        # while (several of each); every call goes through on cached routes.
        outage_until = time.monotonic() + 2.5
        calls = 0
        while time.monotonic() < outage_until:
            assert client.call("add", a=calls, b=1) == calls + 1
            assert direct.call("whoami") == "node-1"
            calls += 1
            time.sleep(0.02)
        assert calls >= 20
        errors = transport.stats.snapshot().get("matchmaker_errors", 0)
        assert errors >= 2

        # Redis comes back empty (no persistence): the server registers again
        # by itself, without a restart.
        redis_server.start()
        wait_until(
            lambda: len(server_routes(backend, "node-1")) == 1,
            "the server registers again after the Redis restart",
            timeout=SERVER_TTL + 3.0,
        )
        # The client's matchmaker answers again too: a call's background
        # refresh of its stale cache entry succeeds.
        wait_until(
            lambda: (
                client.call("whoami") == "node-1"
                and any("answers again" in entry["event"] for entry in logs)
            ),
            "the client's matchmaker notices that Redis is back",
            timeout=5.0,
        )
    failing = [entry for entry in logs if "backend failing" in entry["event"]]
    assert len(failing) == 1, logs  # logged once for the whole outage, not per failure

    # A new client, with nothing cached, finds the server in the new Redis.
    with za.Transport.from_url(matchmaker_url) as fresh:
        assert (
            za.RPCClient(fresh, za.Target(TOPIC), timeout=CALL_TIMEOUT).call("whoami") == "node-1"
        )


class TestSentinel:
    @pytest.fixture
    def matchmaker_url(self, redis_sentinel, on_loopback) -> str:
        return on_loopback(f"{redis_sentinel.url}?matchmaker_ttl={SERVER_TTL}")

    def test_backend_through_sentinel(self, redis_sentinel) -> None:
        spec = parse_url(redis_sentinel.url).matchmaker
        mm = create_matchmaker(spec.kind, spec.location, spec.password)
        assert isinstance(mm, SentinelMatchmaker)
        try:
            mm.register(KEY, "node-1", "tcp://127.0.0.1:1", LONG_TTL)
            assert addresses(mm.lookup(KEY)) == [("node-1", "tcp://127.0.0.1:1")]
            assert [key for key, _ in mm.entries()] == [KEY]
            # It was written to the master the sentinel names.
            assert redis_sentinel.master.client().zcard(PREFIX + KEY) == 1
            mm.unregister(KEY, "node-1", "tcp://127.0.0.1:1")
            assert mm.lookup(KEY) == ()
        finally:
            mm.close()

    @pytest.mark.both_families
    def test_call_through_sentinel(self, spawn_server, matchmaker_url, redis_sentinel) -> None:
        spawn_server(TOPIC, "node-1")
        master = redis_sentinel.master.client()
        assert master.zcard(PREFIX + matchmaker_key(za.Target(TOPIC))) == 1
        with za.Transport.from_url(matchmaker_url) as transport:
            client = za.RPCClient(transport, za.Target(TOPIC), timeout=CALL_TIMEOUT)
            assert client.call("add", a=20, b=22) == 42
            assert client.prepare(server="node-1").call("whoami") == "node-1"


class TestSentinelFailover:
    @pytest.fixture
    def matchmaker_url(self, redis_sentinel_with_replica) -> str:
        return f"{redis_sentinel_with_replica.url}?matchmaker_ttl={SERVER_TTL}"

    def test_registrations_and_calls_follow_a_failover(
        self, spawn_server, matchmaker_url, redis_sentinel_with_replica
    ) -> None:
        setup = redis_sentinel_with_replica
        spawn_server(TOPIC, "node-1")
        key = PREFIX + matchmaker_key(za.Target(TOPIC))
        with za.Transport.from_url(f"{matchmaker_url}&lookup_cache_ttl=0.2") as transport:
            client = za.RPCClient(transport, za.Target(TOPIC), timeout=CALL_TIMEOUT)
            assert client.call("whoami") == "node-1"

            setup.failover()
            new_master = setup.master.client()
            # Whatever replication brought over, remove it: only a heartbeat
            # sent to the promoted master can bring the route back.
            new_master.delete(key)
            wait_until(
                lambda: client.call("whoami") == "node-1" and new_master.zcard(key) == 1,
                "the server registers on the new master",
                timeout=SERVER_TTL + 5.0,
            )
        with za.Transport.from_url(matchmaker_url) as fresh:
            assert (
                za.RPCClient(fresh, za.Target(TOPIC), timeout=CALL_TIMEOUT).call("add", a=1, b=2)
                == 3
            )


def test_routes_keep_the_server_key_and_entries_without_one_still_read(
    backend: RedisMatchmaker, redis_server
) -> None:
    key = "Ut<2tY}5V^z9-8J)Bm+K#pTS=x[VGrr!<gW6bEvV"
    backend.register(KEY, "curve", "tcp://127.0.0.1:1", LONG_TTL, key)
    # What a version before CURVE wrote: a two-element member.
    client = redis_server.client()
    try:
        client.zadd(PREFIX + KEY, {json.dumps(["old", "tcp://127.0.0.1:2"]): 1e15})
    finally:
        client.close()
    routes = backend.lookup(KEY)
    assert [(r.server, r.server_key) for r in routes] == [("curve", key), ("old", None)]
    assert [r.server_key for _, r in backend.entries()] == [key, None]
    backend.unregister(KEY, "curve", "tcp://127.0.0.1:1", key)
    assert [r.server for r in backend.lookup(KEY)] == ["old"]


# --- pushed changes and batched refreshes ---------------------------------------------


def test_a_started_and_a_stopped_server_are_seen_at_once(spawn_server, matchmaker_url) -> None:
    check_start_and_stop_seen_at_once(spawn_server, matchmaker_url, TOPIC)


def test_a_thousand_routes_are_refreshed_in_two_round_trips(backend: RedisMatchmaker) -> None:
    routes = [(KEY, f"node-{i}", f"tcp://127.0.0.1:{i + 1}", None) for i in range(1000)]
    backend.refresh(routes, LONG_TTL)
    assert len(backend.lookup(KEY)) == 1000
    sent: list[int] = []
    connection_class = backend.client.connection_pool.connection_class
    real_send = connection_class.send_packed_command

    def counting(self, command, *args, **kwargs):
        sent.append(1)
        return real_send(self, command, *args, **kwargs)

    connection_class.send_packed_command = counting
    try:
        backend.refresh(routes, LONG_TTL)
    finally:
        connection_class.send_packed_command = real_send
    # redis-py checks that the script is loaded (SCRIPT EXISTS), then sends
    # the whole pipeline: two round trips, whatever the number of routes.
    assert len(sent) == 2
    assert len(backend.lookup(KEY)) == 1000
    backend.unregister_many(routes[1:])
    assert addresses(backend.lookup(KEY)) == [("node-0", "tcp://127.0.0.1:1")]


def test_registrations_and_removals_are_published(backend: RedisMatchmaker) -> None:
    seen: list[tuple[str, ...] | None] = []
    backend.watch(seen.append)
    wait_until(lambda: seen == [None], "the subscription")
    backend.register(KEY, "node-1", "tcp://127.0.0.1:1", LONG_TTL)
    wait_until(lambda: seen == [None, (KEY,)], "the registration published")
    backend.register(KEY, "node-1", "tcp://127.0.0.1:1", LONG_TTL)  # a refresh: nothing new
    backend.unregister(KEY, "node-1", "tcp://127.0.0.1:1")
    wait_until(lambda: seen == [None, (KEY,), (KEY,)], "the removal published")
    backend.close()
    assert not any(t.name == "zmqactors-redis-watch" for t in threading.enumerate())


def test_a_user_without_the_channel_registers_and_its_clients_poll(start_redis) -> None:
    # Redis 7 gives users no channel unless told: registrations must not need one.
    server = start_redis("--user", "nochan", "on", ">pw-nochan", "~*", "resetchannels", "+@all")
    access = RedisAccess(username="nochan", password="pw-nochan")  # noqa: S106 - the test's
    backend = create_matchmaker("redis", f"127.0.0.1:{server.port}/0", access=access)
    seen: list[tuple[str, ...] | None] = []
    with structlog.testing.capture_logs() as logs:
        backend.watch(seen.append)
        backend.register(KEY, "node-1", "tcp://127.0.0.1:1", LONG_TTL)
        assert addresses(backend.lookup(KEY)) == [("node-1", "tcp://127.0.0.1:1")]
        backend.unregister(KEY, "node-1", "tcp://127.0.0.1:1")
        assert backend.lookup(KEY) == ()
        wait_until(lambda: any("not permitted" in e["event"] for e in logs), "the watch giving up")
    assert seen == []
    backend.close()
