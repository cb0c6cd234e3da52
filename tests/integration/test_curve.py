"""CurveZMQ end to end: real TCP sockets, real ZAP, servers in this process and in others.

A CURVE server serves the clients whose public keys are on its allow-list
and nothing to anyone else: a client with another key, a zmqactors client
without CURVE and a raw pyzmq DEALER speaking plain ZMTP all get nothing
served, their calls end (never hang), and the server counts each refused
handshake. The server's public key reaches clients through the matchmaker
(memory, file and Redis backends); servers fail closed.
"""

from __future__ import annotations

import socket
import threading
import time
import uuid
from pathlib import Path
from typing import Self

import pytest
import structlog
import zmq

import zmqactors as za
from tests.helpers import Recorder, wait_until
from tests.wire_helpers import to_server
from zmqactors import wire
from zmqactors.matchmaker import MemoryMatchmaker, create_matchmaker
from zmqactors.net import zap
from zmqactors.options import parse_url
from zmqactors.topics import matchmaker_key

pytestmark = [pytest.mark.integration, pytest.mark.both_families]

TIMEOUT = 5.0


class Endpoint(Recorder):
    def __init__(self, name: str = "s") -> None:
        super().__init__()
        self.name = name

    def add(self, a: int, b: int) -> int:
        return a + b

    def whoami(self) -> str:
        return self.name


class Heard:
    def __init__(self) -> None:
        self.events: list[object] = []

    def info(self, publisher_id, event_type, payload, metadata):  # noqa: ARG002 - the signature
        self.events.append(payload)


@pytest.fixture
def memory_url(on_loopback) -> str:
    return on_loopback(f"zmq+memory://curve-{uuid.uuid4().hex}")


@pytest.fixture
def curve_server(curve_keys, memory_url, transports):
    """A CURVE server in this process (topic "calc", server "s") and its transport."""
    transport = transports(curve_keys.server_url(memory_url))
    endpoint = Endpoint()
    server = za.RPCServer(transport, za.Target("calc", server="s"), [endpoint])
    server.start()
    yield server, endpoint
    server.stop()
    server.wait(timeout=TIMEOUT)


def rejections(transport: za.Transport) -> int:
    return transport.stats.snapshot().get("auth_rejections", 0)


# -- the allowed client ---------------------------------------------------------------


def test_an_allowed_client_calls_casts_and_gets_replies(
    curve_server, curve_keys, transports, memory_url
):
    server, endpoint = curve_server
    assert server.server_key == curve_keys.public["server"]
    client_transport = transports(curve_keys.client_url(memory_url))
    client = za.RPCClient(client_transport, za.Target("calc"), timeout=TIMEOUT)
    assert client.call("add", a=1, b=2) == 3
    futures = [client.call_async("add", a=i, b=i) for i in range(50)]
    assert [f.result(timeout=TIMEOUT) for f in futures] == [2 * i for i in range(50)]
    client.cast("record", value="hello")
    wait_until(lambda: endpoint.recorded() == ["hello"], "the cast", timeout=TIMEOUT)
    assert rejections(server.transport) == 0
    assert client_transport.stats.snapshot().get("auth_failures", 0) == 0


@pytest.mark.parametrize("curve", [True, False], ids=["curve", "plain"])
def test_traffic_on_the_wire_is_encrypted(curve, curve_keys, memory_url, transports, loopback):
    # A TCP relay records what crosses the wire. It is registered as a server
    # of its own (with the real server's key): the real server answers that
    # it does not serve that name, which proves the round trip went through.
    server_url = curve_keys.server_url(memory_url) if curve else memory_url
    server = za.RPCServer(transports(server_url), za.Target("wire", server="s"), [Endpoint()])
    client_url = curve_keys.client_url(memory_url) if curve else memory_url
    client = za.RPCClient(transports(client_url), za.Target("wire", server="relay"), timeout=2)
    with server, TcpRelay(server.address, loopback) as relay:
        MemoryMatchmaker(parse_url(memory_url).matchmaker.location).register(
            matchmaker_key(server.target), "relay", relay.address, 60, server.server_key
        )
        with pytest.raises(za.NoRespondersError, match="does not serve"):
            client.call("add", a="secret-argument", b="x")
    captured = relay.captured()
    assert captured, "nothing went through the relay"
    assert (b"secret-argument" in captured) is not curve
    assert (b"CURVE" in captured) is curve


class TcpRelay:
    """Relays one TCP connection to ``upstream`` (a tcp:// address) and records both ways.

    It listens on ``loopback`` (127.0.0.1 or ::1).
    """

    def __init__(self, upstream: str, loopback: str) -> None:
        host, port = upstream.removeprefix("tcp://").rsplit(":", 1)
        self._upstream = (host.strip("[]"), int(port))
        family = socket.AF_INET6 if ":" in loopback else socket.AF_INET
        self._listener = socket.create_server((loopback, 0), family=family)
        self._listener.settimeout(TIMEOUT)
        port = self._listener.getsockname()[1]
        self.address = (
            f"tcp://[{loopback}]:{port}" if ":" in loopback else f"tcp://{loopback}:{port}"
        )
        self._data = bytearray()
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._relay, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._done.set()
        self._thread.join(TIMEOUT * 2)
        self._listener.close()
        assert not self._thread.is_alive()

    def captured(self) -> bytes:
        with self._lock:
            return bytes(self._data)

    def _relay(self) -> None:
        try:
            conn, _ = self._listener.accept()
        except OSError:
            return
        upstream = socket.create_connection(self._upstream, timeout=TIMEOUT)
        pumps = [
            threading.Thread(target=self._pump, args=(conn, upstream), daemon=True),
            threading.Thread(target=self._pump, args=(upstream, conn), daemon=True),
        ]
        for pump in pumps:
            pump.start()
        for pump in pumps:
            pump.join(TIMEOUT * 2)
        conn.close()
        upstream.close()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        source.settimeout(0.1)
        while not self._done.is_set():
            try:
                chunk = source.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            if not chunk:
                return
            with self._lock:
                self._data.extend(chunk)
            try:
                sink.sendall(chunk)
            except OSError:
                return


def test_fanout_and_notifications_go_through_curve(curve_keys, memory_url, transports):
    servers_transport = transports(curve_keys.server_url(memory_url))
    endpoints = [Endpoint(f"s{i}") for i in range(2)]
    servers = [
        za.RPCServer(servers_transport, za.Target("fan", server=e.name), [e]) for e in endpoints
    ]
    heard = Heard()
    listener = za.NotificationListener(servers_transport, [za.Target("events")], [heard])
    for service in [*servers, listener]:
        service.start()
    try:
        client_transport = transports(curve_keys.client_url(memory_url))
        za.RPCClient(client_transport, za.Target("fan")).prepare(fanout=True).cast(
            "record", value=1
        )
        notifier = za.Notifier(client_transport, publisher_id="p", topics=("events",))
        assert notifier.info("thing.happened", {"n": 7}) == 1
        wait_until(
            lambda: all(e.recorded() == [1] for e in endpoints), "the fanout", timeout=TIMEOUT
        )
        wait_until(lambda: heard.events == [{"n": 7}], "the notification", timeout=TIMEOUT)
        assert rejections(servers_transport) == 0
    finally:
        for service in [*servers, listener]:
            service.stop()
            service.wait(timeout=TIMEOUT)


# -- clients that get nothing ---------------------------------------------------------


def test_a_client_with_an_unknown_key_gets_nothing_and_is_counted(
    curve_server, curve_keys, transports, memory_url, loopback
):
    server, endpoint = curve_server
    url = memory_url
    intruder = transports(curve_keys.client_url(url, "intruder"))
    client = za.RPCClient(intruder, za.Target("calc"), timeout=2.0)
    started = time.monotonic()
    with (
        structlog.testing.capture_logs() as logs,
        pytest.raises((za.SecurityError, za.MessagingTimeout)) as info,
    ):
        client.call("add", a=1, b=2)
    assert time.monotonic() - started < 2.0 + 0.5
    # The refusal names the client's address as ZAP reported it, in its family.
    refusals = [e for e in logs if e["event"] == "CURVE client key not on the allow-list"]
    assert refusals
    assert refusals[0]["peer"] == loopback
    assert "allow-list" in str(info.value) or isinstance(info.value, za.MessagingTimeout)
    client.cast("record", value="intruder")
    wait_until(lambda: rejections(server.transport) >= 2, "two refused handshakes", timeout=TIMEOUT)
    assert intruder.stats.snapshot().get("auth_failures", 0) >= 1
    # The allowed client is still served, and the intruder's cast never ran.
    allowed = za.RPCClient(transports(curve_keys.client_url(url)), za.Target("calc"))
    assert allowed.call("recorded") == []
    assert endpoint.recorded() == []


def assert_refused_before_sending(
    transport: za.Transport, reason: str, **cast_args: object
) -> None:
    """A call and a cast to "calc" from ``transport`` are refused for ``reason``, sending nothing.

    The call raises `SecurityError` matching ``reason``; the cast, which cannot
    raise, is counted as a security refusal.
    """
    client = za.RPCClient(transport, za.Target("calc"), timeout=TIMEOUT)
    with pytest.raises(za.SecurityError, match=reason):
        client.call("add", a=1, b=2)
    client.cast("record", **cast_args)
    wait_until(
        lambda: transport.stats.snapshot().get("security_refusals", 0) == 1,
        "the refused cast",
        timeout=TIMEOUT,
    )


def test_a_zmqactors_client_without_curve_is_refused_before_sending(
    curve_server, transports, memory_url
):
    _, endpoint = curve_server
    plain = transports(memory_url)
    assert_refused_before_sending(plain, "requires CURVE", value="plain")
    assert endpoint.recorded() == []


def test_a_raw_plain_zmtp_client_gets_nothing_and_is_counted(curve_server):
    server, endpoint = curve_server
    context = zmq.Context()
    sock = context.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.IPV6, 1)
    try:
        sock.connect(server.address)
        frames = to_server(
            wire.request_frames(
                server.target,
                wire.CallKind.CALL,
                "record",
                args={"value": "raw"},
                context={},
                timeout=1.0,
                msg_id=wire.new_msg_id(),
            ),
            server.target,
        )
        sock.send_multipart(frames)
        wait_until(
            lambda: rejections(server.transport) >= 1, "the refused handshake", timeout=TIMEOUT
        )
        assert sock.poll(500) == 0  # no reply
    finally:
        sock.close()
        context.term()
    assert endpoint.recorded() == []


def test_a_curve_client_refuses_a_server_without_curve(curve_keys, memory_url, transports):
    plain_server_transport = transports(memory_url)
    endpoint = Endpoint()
    with za.RPCServer(plain_server_transport, za.Target("calc", server="p"), [endpoint]) as server:
        assert server.server_key is None
        client_transport = transports(curve_keys.client_url(memory_url))
        assert_refused_before_sending(client_transport, "advertises no CURVE key", value="leak")
        assert za.RPCClient(plain_server_transport, za.Target("calc")).call("recorded") == []


# -- failing closed -------------------------------------------------------------------


def _refused_to_start(url: str, transports, *fragments: str) -> None:
    transport = transports(url)
    server = za.RPCServer(transport, za.Target("closed", server="x"), [Endpoint()])
    with pytest.raises(za.SecurityError) as info:
        server.start()
    for fragment in fragments:
        assert fragment in str(info.value)
    assert server.state == "new"
    assert server.address == ""
    spec = transport.settings.matchmaker
    backend = create_matchmaker(spec.kind, spec.location)
    assert backend.lookup(matchmaker_key(server.target)) == ()


def test_a_world_readable_secret_key_refuses_the_server(curve_keys, memory_url, transports):
    secret = curve_keys.directory / "server.key_secret"
    secret.chmod(0o644)
    _refused_to_start(curve_keys.server_url(memory_url), transports, str(secret), "others")


def test_a_missing_allow_list_refuses_the_server(
    curve_keys, memory_url, transports, tmp_path, with_query
):
    missing = tmp_path / "no-such-dir"
    url = with_query(
        memory_url,
        f"curve_secret_key_file={curve_keys.secret('server')}&curve_public_keys_dir={missing}",
    )
    _refused_to_start(url, transports, str(missing), "does not exist")


def test_a_malformed_secret_key_refuses_the_server(curve_keys, memory_url, transports):
    secret = curve_keys.directory / "server.key_secret"
    secret.write_text("not a certificate\n")
    _refused_to_start(curve_keys.server_url(memory_url), transports, str(secret), "malformed")


def test_no_running_authenticator_refuses_the_server(
    curve_keys, memory_url, transports, monkeypatch
):
    # Start one CURVE server so the process's authenticator exists, then make
    # it look dead: libzmq would let every client in without it.
    with za.RPCServer(
        transports(curve_keys.server_url(memory_url)), za.Target("ok", server="y"), [Endpoint()]
    ):
        pass
    assert zap.authenticator_running()
    monkeypatch.setattr(zap._process, "running", lambda: False)
    auth = zap._process._authenticator
    monkeypatch.setattr(auth, "is_alive", lambda: False)
    _refused_to_start(curve_keys.server_url(memory_url), transports, "authenticator")


# -- the key travels through the matchmaker --------------------------------------------


def test_the_server_key_travels_through_the_file_matchmaker(
    curve_keys, matchmaker_url, spawn_server, transports
):
    served = spawn_server("calc.curve", "remote", "--url", curve_keys.server_url(matchmaker_url))
    spec = parse_url(matchmaker_url).matchmaker
    (route,) = create_matchmaker(spec.kind, spec.location).lookup(
        matchmaker_key(za.Target("calc.curve"))
    )
    assert route.address == served.address
    assert route.server_key == curve_keys.public["server"]
    client = za.RPCClient(
        transports(curve_keys.client_url(matchmaker_url)), za.Target("calc.curve"), timeout=TIMEOUT
    )
    assert client.call("whoami") == "remote"
    assert client.call("add", a=20, b=22) == 42


def test_the_server_key_travels_through_redis(curve_keys, redis_server, spawn_server, transports):
    url = redis_server.url
    served = spawn_server("calc.curve", "remote", "--url", curve_keys.server_url(url))
    backend = create_matchmaker("redis", parse_url(url).matchmaker.location)
    try:
        (route,) = backend.lookup(matchmaker_key(za.Target("calc.curve")))
    finally:
        backend.close()
    assert (route.address, route.server_key) == (served.address, curve_keys.public["server"])
    client = za.RPCClient(
        transports(curve_keys.client_url(url)), za.Target("calc.curve"), timeout=TIMEOUT
    )
    assert client.call("add", a=1, b=2) == 3
    # Without a key pair the route's key still makes the client refuse plain text.
    with pytest.raises(za.SecurityError, match="requires CURVE"):
        za.RPCClient(transports(url), za.Target("calc.curve"), timeout=TIMEOUT).call("whoami")


def test_servers_of_a_transport_share_its_curve_socket_and_refuse_a_changed_key(
    curve_server, curve_keys, transports, memory_url
):
    server, _ = curve_server
    second = za.RPCServer(server.transport, za.Target("calc", server="t"), [Endpoint()])
    with second:
        assert (second.address, second.server_key) == (server.address, server.server_key)
        client = za.RPCClient(transports(curve_keys.client_url(memory_url)), za.Target("calc"))
        assert client.prepare(server="t", timeout=TIMEOUT).call("add", a=2, b=2) == 4
    # The key pair file changes under the running transport: its socket still
    # serves with the old key, so a server advertising the new one is refused.
    Path(curve_keys.secret("server")).write_bytes(Path(curve_keys.secret("client")).read_bytes())
    third = za.RPCServer(server.transport, za.Target("calc", server="u"), [Endpoint()])
    with pytest.raises(za.SecurityError, match=r"shares its socket.*curve_secret_key_file"):
        third.start()
