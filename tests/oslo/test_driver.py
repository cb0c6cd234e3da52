"""The oslo.messaging driver's own edges, through oslo.messaging's public API.

Each test runs on its own in-memory matchmaker (``zmq+memory://<uuid>``), so
servers and clients of one test meet only each other. The functional suite
(`test_functional.py`) covers the ordinary paths on ``zmq://`` and Redis.
"""

from __future__ import annotations

import concurrent.futures
import threading
import time
import uuid
from typing import Any

import oslo_messaging
import pytest
from oslo_config import cfg
from oslo_messaging import conffixture
from oslo_messaging.rpc import dispatcher as rpc_dispatcher

from tests.helpers import wait_until
from zmqactors.errors import ConfigurationError
from zmqactors.matchmaker import MemoryMatchmaker
from zmqactors.options import parse_url, register_opts
from zmqactors.oslo import ZmqActorsDriver
from zmqactors.oslo._targets import escape
from zmqactors.oslo.driver import zmq_url
from zmqactors.oslo.listener import RpcIncoming

pytestmark = pytest.mark.integration


class Boom(Exception):  # noqa: N818 - named like what it means in the tests
    """An exception endpoints raise; its module may or may not be allowed to the caller."""


class Endpoint:
    def __init__(self) -> None:
        self.seen: list[tuple[dict[str, Any], dict[str, Any]]] = []
        self.started = threading.Event()
        self.release = threading.Event()

    def echo(self, ctxt: dict[str, Any], **kwargs: Any) -> Any:
        self.seen.append((ctxt, kwargs))
        return kwargs

    def sleep(self, ctxt: dict[str, Any], seconds: float) -> float:  # noqa: ARG002
        self.started.set()
        time.sleep(seconds)
        return seconds

    def wait_release(self, ctxt: dict[str, Any], value: int) -> int:  # noqa: ARG002
        self.started.set()
        assert self.release.wait(30)
        return value

    def boom(self, ctxt: dict[str, Any]) -> None:  # noqa: ARG002
        raise Boom("boom", 42)


class Harness:
    """Transports, servers and listeners of one test on one in-memory matchmaker."""

    def __init__(self) -> None:
        self.conf = cfg.ConfigOpts()
        conffixture.ConfFixture(self.conf)  # registers oslo's options on this conf
        self.url = f"zmq+memory://{uuid.uuid4().hex}"
        self._transports: list[Any] = []
        self._servers: list[Any] = []

    def transport(self, *, notifications: bool = False, **kwargs: Any) -> Any:
        factory = (
            oslo_messaging.get_notification_transport
            if notifications
            else oslo_messaging.get_rpc_transport
        )
        transport = factory(self.conf, url=self.url, **kwargs)
        self._transports.append(transport)
        return transport

    def server(self, target: oslo_messaging.Target, endpoint: object) -> Any:
        server = oslo_messaging.get_rpc_server(self.transport(), target, [endpoint])
        server.start()
        self._servers.append(server)
        return server

    def client(self, target: oslo_messaging.Target, **kwargs: Any) -> Any:
        kwargs.setdefault("timeout", 5)
        return oslo_messaging.get_rpc_client(self.transport(), target, **kwargs)

    def listener(
        self, topics: list[str], endpoint: object, *, pool: str | None = None, **kwargs: Any
    ) -> Any:
        listener = oslo_messaging.get_notification_listener(
            self.transport(notifications=True),
            [oslo_messaging.Target(topic=t) for t in topics],
            [endpoint],
            pool=pool,
            **kwargs,
        )
        listener.start()
        self._servers.append(listener)
        return listener

    def notifier(self, topic: str, publisher: str = "pub") -> Any:
        return oslo_messaging.Notifier(
            self.transport(notifications=True), publisher, driver="messaging", topics=[topic]
        )

    def close(self) -> None:
        for server in self._servers:
            server.stop()
            server.wait()
        for transport in self._transports:
            transport.cleanup()


@pytest.fixture
def harness() -> Any:
    h = Harness()
    yield h
    h.close()


def _driver(transport: Any) -> ZmqActorsDriver:
    driver = transport._driver
    assert isinstance(driver, ZmqActorsDriver)
    return driver


def _stats(transport: Any) -> dict[str, int]:
    return dict(_driver(transport).transport.stats.snapshot())


# -- calls ----------------------------------------------------------------------


def test_context_and_arguments_arrive_unchanged(harness):
    endpoint = Endpoint()
    harness.server(oslo_messaging.Target(topic="t", server="s"), endpoint)
    client = harness.client(oslo_messaging.Target(topic="t"))
    ctxt = {"user": "ü", "roles": ["a", "b"], "nested": {"n": None, "f": 1.5}, "big": 2**62}
    args = {"text": "snow ☃", "items": [1, [2, {"x": True}]], "none": None}
    assert client.call(ctxt, "echo", **args) == args
    seen_ctxt, seen_args = endpoint.seen[0]
    assert seen_args == args
    assert {k: seen_ctxt[k] for k in ctxt} == ctxt


def test_reply_after_the_caller_timed_out_is_dropped_and_counted(harness):
    endpoint = Endpoint()
    harness.server(oslo_messaging.Target(topic="t", server="s"), endpoint)
    client = harness.client(oslo_messaging.Target(topic="t"))
    started = time.monotonic()
    with pytest.raises(oslo_messaging.MessagingTimeout):
        client.prepare(timeout=0.3).call({}, "sleep", seconds=1.0)
    assert time.monotonic() - started < 0.3 + 0.5
    wait_until(lambda: _stats(client.transport).get("late_replies", 0) >= 1)
    # The late reply went nowhere: the next call gets its own reply.
    assert client.call({}, "echo", n=7) == {"n": 7}


def test_a_server_stopped_with_calls_in_progress_still_answers_them(harness):
    endpoint = Endpoint()
    server = harness.server(oslo_messaging.Target(topic="t", server="s"), endpoint)
    client = harness.client(oslo_messaging.Target(topic="t"), timeout=20)
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        calls = [pool.submit(client.call, {}, "wait_release", value=i) for i in range(3)]
        assert endpoint.started.wait(10)
        time.sleep(0.2)  # all three taken by the server's executor
        stopping = pool.submit(lambda: (server.stop(), server.wait()))
        time.sleep(0.2)
        # Stopped: a new call finds no server and times out (nothing hangs).
        with pytest.raises(oslo_messaging.MessagingTimeout):
            client.prepare(timeout=0.5).call({}, "echo")
        endpoint.release.set()
        assert sorted(c.result(timeout=10) for c in calls) == [0, 1, 2]
        stopping.result(timeout=10)


def test_calls_move_to_the_remaining_server_when_one_stops(harness):
    first, second = Endpoint(), Endpoint()
    server = harness.server(oslo_messaging.Target(topic="t", server="a"), first)
    harness.server(oslo_messaging.Target(topic="t", server="b"), second)
    client = harness.client(oslo_messaging.Target(topic="t"))
    for i in range(4):
        client.call({}, "echo", i=i)
    assert first.seen
    assert second.seen
    server.stop()
    server.wait()
    # The client's route cache still lists "a" (for lookup_cache_ttl): a call
    # sent as a's socket closes is lost with the connection and fails at once
    # (its outcome is unknown, so it is not retried); the client then routes
    # around "a", and every later call reaches "b".
    before = len(second.seen)
    outcomes = []
    for i in range(6):
        started = time.monotonic()
        try:
            assert client.call({}, "echo", i=i) == {"i": i}
            outcomes.append("ok")
        except oslo_messaging.MessagingTimeout:
            assert time.monotonic() - started < 1
            outcomes.append("lost")
    assert outcomes.count("lost") <= 1
    assert outcomes[-5:] == ["ok"] * 5
    assert len(second.seen) == before + outcomes.count("ok")


def test_heartbeats_keep_a_long_call_alive(harness):
    # oslo's test_monitor_long_call, which the suite runs on rabbit:// and amqp:// only.
    harness.server(oslo_messaging.Target(topic="t", server="s"), Endpoint())
    client = harness.client(oslo_messaging.Target(topic="t", server="s"))
    with pytest.raises(oslo_messaging.MessagingTimeout):
        client.prepare(timeout=1).call({}, "sleep", seconds=3)
    monitored = client.prepare(timeout=3600, call_monitor_timeout=2)
    assert monitored.call({}, "sleep", seconds=4) == 4


def test_without_heartbeats_a_monitored_call_fails_fast(harness, monkeypatch):
    # A server that is alive but hung sends no heartbeats.
    monkeypatch.setattr(RpcIncoming, "heartbeat", lambda _self: None)
    harness.server(oslo_messaging.Target(topic="t", server="s"), Endpoint())
    client = harness.client(oslo_messaging.Target(topic="t"), timeout=60, call_monitor_timeout=2)
    started = time.monotonic()
    with pytest.raises(oslo_messaging.MessagingTimeout, match="no heartbeat"):
        client.call({}, "sleep", seconds=3)
    assert time.monotonic() - started < 3


def test_a_call_waits_for_a_server_that_starts_within_its_timeout(harness):
    client = harness.client(oslo_messaging.Target(topic="late"), timeout=10)
    threading.Timer(
        0.5, harness.server, (oslo_messaging.Target(topic="late", server="s"), Endpoint())
    ).start()
    assert client.call({}, "echo", x=1) == {"x": 1}


def test_at_least_once_fails_at_once_when_nobody_serves(harness):
    options = oslo_messaging.TransportOptions(at_least_once=True)
    client = harness.client(
        oslo_messaging.Target(topic="nobody"), timeout=60, transport_options=options
    )
    started = time.monotonic()
    with pytest.raises(oslo_messaging.MessageUndeliverable):
        client.call({}, "echo")
    with pytest.raises(oslo_messaging.MessageUndeliverable):
        client.cast({}, "echo")
    assert time.monotonic() - started < 1


def test_remote_exceptions_keep_their_type_only_when_their_module_is_allowed(harness):
    harness.server(oslo_messaging.Target(topic="t", server="s"), Endpoint())
    plain = harness.client(oslo_messaging.Target(topic="t"))
    with pytest.raises(oslo_messaging.RemoteError) as remote:
        plain.call({}, "boom")
    assert remote.value.exc_type == "Boom"
    allowed = oslo_messaging.get_rpc_client(
        harness.transport(allowed_remote_exmods=[Boom.__module__]),
        oslo_messaging.Target(topic="t"),
        timeout=5,
    )
    with pytest.raises(Boom) as error:
        allowed.call({}, "boom")
    assert error.value.args == ("boom", 42)
    assert "Traceback" in str(error.value)


def test_a_reply_json_cannot_carry_fails_the_call_at_once(harness):
    class Odd:
        def odd(self, ctxt: dict[str, Any]) -> object:  # noqa: ARG002
            return {1j: "complex keys are not JSON"}

    harness.server(oslo_messaging.Target(topic="t", server="s"), Odd())
    client = harness.client(oslo_messaging.Target(topic="t"), timeout=30)
    started = time.monotonic()
    with pytest.raises(TypeError, match="cannot send the reply"):
        client.call({}, "odd")
    assert time.monotonic() - started < 5


def test_cleanup_fails_pending_calls_at_once(harness):
    endpoint = Endpoint()
    harness.server(oslo_messaging.Target(topic="t", server="s"), endpoint)
    transport = harness.transport()
    client = oslo_messaging.get_rpc_client(transport, oslo_messaging.Target(topic="t"), timeout=30)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        call = pool.submit(client.call, {}, "wait_release", value=1)
        assert endpoint.started.wait(10)
        transport.cleanup()
        with pytest.raises(oslo_messaging.MessagingException):
            call.result(timeout=5)
    endpoint.release.set()


# -- casts and exchanges -----------------------------------------------------------


def test_exchanges_isolate_calls_casts_and_fanout(harness):
    in_a, in_b = Endpoint(), Endpoint()
    harness.server(oslo_messaging.Target(topic="same", server="s", exchange="a"), in_a)
    harness.server(oslo_messaging.Target(topic="same", server="s", exchange="b"), in_b)
    client_a = harness.client(oslo_messaging.Target(topic="same", exchange="a"))
    for i in range(3):
        client_a.call({}, "echo", i=i)
    client_a.cast({}, "echo", i=3)
    client_a.prepare(fanout=True).cast({}, "echo", i=4)
    client_a.prepare(server="s").call({}, "echo", i=5)
    wait_until(lambda: len(in_a.seen) == 6)
    time.sleep(0.2)
    assert in_b.seen == []


def test_a_cast_with_no_server_is_dropped_and_counted(harness):
    client = harness.client(oslo_messaging.Target(topic="nobody"))
    client.cast({}, "echo")
    client.prepare(fanout=True).cast({}, "echo")
    assert _stats(client.transport)["casts_unrouted"] == 2


def test_names_oslo_allows_but_zmqactors_does_not_still_route_apart(harness):
    odd, twin = Endpoint(), Endpoint()
    harness.server(oslo_messaging.Target(topic="a/b c~", server="host one"), odd)
    harness.server(oslo_messaging.Target(topic=escape("a/b c~"), server="x"), twin)
    client = harness.client(oslo_messaging.Target(topic="a/b c~", server="host one"))
    assert client.call({}, "echo", k=1) == {"k": 1}
    assert len(odd.seen) == 1
    assert twin.seen == []


# -- notifications ------------------------------------------------------------------


class Collector:
    def __init__(self, requeue_first: int = 0) -> None:
        self.events: list[tuple[str, str, Any]] = []
        self._requeue = requeue_first

    def info(
        self, ctxt: dict[str, Any], publisher: str, event_type: str, payload: Any, metadata: Any
    ) -> Any:
        del ctxt, metadata
        if self._requeue:
            self._requeue -= 1
            return oslo_messaging.NotificationResult.REQUEUE
        self.events.append((publisher, event_type, payload))
        return None


def test_a_notification_with_no_listener_is_dropped_and_counted(harness):
    notifier = harness.notifier("quiet")
    started = time.monotonic()
    for _ in range(100):
        notifier.info({}, "nobody.listens", {"n": 1})
    assert time.monotonic() - started < 2
    assert _stats(notifier.transport)["notifications_unrouted"] == 100


def test_a_listener_that_starts_later_gets_the_next_notifications(harness):
    notifier = harness.notifier("later")
    notifier.info({}, "early", 1)
    collector = Collector()
    harness.listener(["later"], collector)
    deadline = time.monotonic() + 10
    while not collector.events and time.monotonic() < deadline:
        notifier.info({}, "late", 2)
        time.sleep(0.1)
    assert collector.events[0] == ("pub", "late", 2)


def test_each_pool_gets_one_copy(harness):
    pool_a = [Collector(), Collector()]
    pool_b = [Collector()]
    for collector in pool_a:
        harness.listener(["pools"], collector, pool="a")
    harness.listener(["pools"], pool_b[0], pool="b")
    notifier = harness.notifier("pools")
    for i in range(10):
        notifier.info({}, "e", i)
    wait_until(lambda: sum(len(c.events) for c in pool_a) == 10 and len(pool_b[0].events) == 10)
    assert all(c.events for c in pool_a)
    time.sleep(0.2)
    assert sum(len(c.events) for c in pool_a) == 10


def test_a_requeued_notification_is_delivered_again(harness):
    collector = Collector(requeue_first=2)
    harness.listener(["requeue"], collector, allow_requeue=True)
    harness.notifier("requeue").info({}, "e", "p")
    wait_until(lambda: collector.events == [("pub", "e", "p")])


# -- configuration ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "zmq://",
        "zmq+memory://name",
        "zmq+file:///tmp/some/dir",
        "zmq+redis://127.0.0.1:6379/0",
        "zmq+redis://:s%40cret@redis.example:6380/2",
        "zmq+sentinel://h1:26379,h2:26380/mymaster",
        "zmq://?timeout=2&executor_size=4",
        "zmq+redis://[::1]:6379/0",
        "zmq+sentinel://[fd00::1]:26379,[fd00::2]:26380/mymaster",
        "zmq://?bind_address=::1",
        "zmq+etcd://127.0.0.1:2379/zmqactors",
        "zmq+etcds://h1:2379,h2:2380/my/prefix",
    ],
)
def test_oslo_transport_urls_reach_zmqactors_whole(url):
    parsed = oslo_messaging.TransportURL.parse(cfg.ConfigOpts(), url)
    rebuilt = zmq_url(parsed)
    assert oslo_messaging.TransportURL.parse(cfg.ConfigOpts(), rebuilt) == parsed
    assert rebuilt.split("://")[0] == url.split("://")[0]


def test_credentials_oslo_repeats_on_every_host_are_given_once():
    # oslo parses "u:p@h1,h2" as the user and password on h1 only, and
    # writes them on every host when the URL names them so.
    url = "zmq+etcd://root:s%40cret@h1:2379,root:s%40cret@h2:2379/p"
    rebuilt = zmq_url(oslo_messaging.TransportURL.parse(cfg.ConfigOpts(), url))
    assert rebuilt == "zmq+etcd://root:s%40cret@h1:2379,h2:2379/p"
    settings = parse_url(rebuilt)
    assert settings.matchmaker.location == "h1:2379,h2:2379/p"
    assert (settings.matchmaker.username, settings.matchmaker.password) == ("root", "s@cret")
    mixed = "zmq+etcd://a:x@h1:2379,b:y@h2:2379/p"
    with pytest.raises(ConfigurationError, match="different users"):
        zmq_url(oslo_messaging.TransportURL.parse(cfg.ConfigOpts(), mixed))


def assert_a_notification_is_heard(harness: Any) -> None:
    """An info notification on topic "n" reaches a listener of the harness's transport."""
    heard: list[Any] = []

    class Listener:
        def info(self, ctxt, publisher_id, event_type, payload, metadata):  # noqa: ARG002
            heard.append(payload)

    harness.listener(["n"], Listener())
    harness.notifier("n").info({}, "e", {"z": 3})
    wait_until(lambda: heard == [{"z": 3}])


def test_calls_and_notifications_over_ipv6(harness):
    harness.url += "?bind_address=[::1]"
    endpoint = Endpoint()
    server = harness.server(oslo_messaging.Target(topic="t", server="s"), endpoint)
    store = MemoryMatchmaker(harness.url.removeprefix("zmq+memory://").partition("?")[0])
    assert [route.address[:12] for _, route in store.entries()] == ["tcp://[::1]:"]
    assert _driver(server.transport).transport.settings.bind_address == "::1"
    client = harness.client(oslo_messaging.Target(topic="t"))
    assert client.call({}, "echo", x=1) == {"x": 1}
    assert_a_notification_is_heard(harness)


def test_a_bad_zmq_url_is_oslos_invalid_transport_url():
    conf = cfg.ConfigOpts()
    conffixture.ConfFixture(conf)
    with pytest.raises(oslo_messaging.InvalidTransportURL, match="no_such_option"):
        oslo_messaging.get_rpc_transport(conf, url="zmq://?no_such_option=1")


def test_escape_is_injective_and_keeps_valid_names():
    names = ["compute", "host@backend#pool", "a/b", "a~2Fb", "a b", "ü", "x" * 300, "x" * 301]
    escaped = [escape(n) for n in names]
    assert escaped[:2] == names[:2]
    assert len(set(escaped)) == len(names)
    assert all(len(e) <= 255 for e in escaped)


# -- CurveZMQ -------------------------------------------------------------------------


def _curve_conf(conf: cfg.ConfigOpts, curve_keys: Any) -> None:
    # The driver registers the [zmq] options itself; a service's config file
    # sets them. The server's key pair is on the allow-list, so the one conf
    # serves and calls.
    register_opts(conf)
    conf.set_override("curve_secret_key_file", curve_keys.secret("server"), group="zmq")
    conf.set_override("curve_public_keys_dir", str(curve_keys.allowed), group="zmq")


def test_curve_options_in_oslo_config_encrypt_calls_casts_and_notifications(harness, curve_keys):
    _curve_conf(harness.conf, curve_keys)
    endpoint = Endpoint()
    server = harness.server(oslo_messaging.Target(topic="t", server="s"), endpoint)
    driver = _driver(server.transport)
    settings = driver.transport.settings
    assert settings.curve_secret_key_file == curve_keys.secret("server")
    assert settings.curve_public_keys_dir == str(curve_keys.allowed)
    store = MemoryMatchmaker(harness.url.removeprefix("zmq+memory://"))
    assert [route.server_key for _, route in store.entries()] == [curve_keys.public["server"]]
    client = harness.client(oslo_messaging.Target(topic="t"))
    assert client.call({}, "echo", x=1) == {"x": 1}
    client.cast({}, "echo", y=2)
    wait_until(lambda: len(endpoint.seen) == 2)
    assert_a_notification_is_heard(harness)


def test_an_oslo_client_without_curve_gets_nothing_from_a_curve_server(harness, curve_keys):
    _curve_conf(harness.conf, curve_keys)
    endpoint = Endpoint()
    harness.server(oslo_messaging.Target(topic="t", server="s"), endpoint)
    plain = cfg.ConfigOpts()
    conffixture.ConfFixture(plain)
    transport = oslo_messaging.get_rpc_transport(plain, url=harness.url)
    try:
        client = oslo_messaging.get_rpc_client(
            transport, oslo_messaging.Target(topic="t"), timeout=2
        )
        with pytest.raises(oslo_messaging.MessagingException, match="requires CURVE"):
            client.call({}, "echo", x=1)
    finally:
        transport.cleanup()
    assert endpoint.seen == []


def test_pinned_server_keys_keep_oslo_calls_off_rogue_routes(harness, curve_keys):
    # Issue #12 row 2 through the driver: routes with keys not pinned in
    # curve_server_keys_dir are never used; a server name only a rogue
    # registered fails at once instead of waiting for a server to appear.
    _curve_conf(harness.conf, curve_keys)
    pins = curve_keys.directory / "pins"
    pins.mkdir(mode=0o700)
    (pins / "s.key").write_bytes((curve_keys.allowed / "server.key").read_bytes())
    harness.conf.set_override("curve_server_keys_dir", str(pins), group="zmq")
    endpoint = Endpoint()
    harness.server(oslo_messaging.Target(topic="t", server="s"), endpoint)
    store = MemoryMatchmaker(harness.url.removeprefix("zmq+memory://"))
    ((key, _),) = store.entries()
    rogue_key = curve_keys.public["intruder"]
    for name in ("s", "rogue"):
        store.register(key, name, "tcp://127.0.0.1:9", 60, rogue_key)
    client = harness.client(oslo_messaging.Target(topic="t"))
    for i in range(10):
        assert client.call({}, "echo", i=i) == {"i": i}
    started = time.monotonic()
    with pytest.raises(oslo_messaging.MessagingException, match="not pinned"):
        client.prepare(server="rogue").call({}, "echo", x=1)
    assert time.monotonic() - started < 1
    assert _stats(client.transport)["untrusted_routes"] == 2


def test_a_busy_server_is_tried_again_until_it_answers(harness):
    # One request per client queued at most: a burst of calls from one
    # connection meets ServerBusyError, which the driver retries, backing off.
    busy_url = f"{harness.url}?max_queued_per_client=1"
    server_transport = oslo_messaging.get_rpc_transport(harness.conf, url=busy_url)
    harness._transports.append(server_transport)
    server = oslo_messaging.get_rpc_server(
        server_transport, oslo_messaging.Target(topic="t", server="s"), [Endpoint()]
    )
    server.start()
    harness._servers.append(server)
    client = harness.client(oslo_messaging.Target(topic="t"), timeout=30)
    with concurrent.futures.ThreadPoolExecutor(32) as pool:
        results = list(pool.map(lambda n: client.call({}, "echo", n=n), range(300)))
    assert results == [{"n": n} for n in range(300)]
    assert _stats(server_transport).get("busy_refused", 0) > 0


# -- operability ------------------------------------------------------------------


def test_rpc_ping_is_answered_when_oslo_enables_it(harness):
    # oslo's dispatcher reads rpc_ping_enabled from the global CONF when the
    # server is built, and adds its own ping endpoint: the driver carries it.
    cfg.CONF.register_opts(rpc_dispatcher._dispatcher_opts)  # as oslo's dispatcher does
    cfg.CONF.set_override("rpc_ping_enabled", override=True)
    try:
        harness.server(oslo_messaging.Target(topic="pinged", server="s"), Endpoint())
    finally:
        cfg.CONF.clear_override("rpc_ping_enabled")
    client = harness.client(oslo_messaging.Target(topic="pinged"))
    assert client.call({}, "oslo_rpc_server_ping") == "pong"
    harness.server(oslo_messaging.Target(topic="unpinged", server="s"), Endpoint())
    with pytest.raises(oslo_messaging.RemoteError, match="NoSuchMethod"):
        harness.client(oslo_messaging.Target(topic="unpinged")).call({}, "oslo_rpc_server_ping")
