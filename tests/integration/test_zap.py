"""ZAP fails closed, handshakes are bounded, refusals do not flood the log (issue #12).

Real servers on real TCP sockets in this process (the process's authenticator
is what is stopped here), clients on their own transports.
"""

from __future__ import annotations

import contextlib
import socket
import time
import uuid

import pytest
import structlog
import zmq

import zmqactors as za
from tests.helpers import wait_until
from zmqactors.net import zap

pytestmark = [pytest.mark.integration]

TIMEOUT = 5.0
ZAP_DOWN = "the ZAP authenticator is not running: every CURVE client is refused"


class Endpoint:
    def __init__(self) -> None:
        self.calls = 0

    def add(self, a: int, b: int) -> int:
        self.calls += 1
        return a + b


@pytest.fixture
def memory_url() -> str:
    return f"zmq+memory://zap-{uuid.uuid4().hex}"


def served_by(transports, url: str, topic: str = "calc") -> bool:
    """Whether a new connection from a client with ``url`` gets a call served."""
    client = za.RPCClient(transports(url), za.Target(topic), timeout=1.0)
    try:
        return client.call("add", a=1, b=2) == 3
    except (za.SecurityError, za.MessagingTimeout):
        return False


def test_no_client_is_served_while_the_authenticator_is_stopped(curve_keys, memory_url, transports):
    endpoint = Endpoint()
    server = za.RPCServer(
        transports(curve_keys.server_url(memory_url)), za.Target("calc", server="a"), [endpoint]
    )
    with server:
        assert served_by(transports, curve_keys.client_url(memory_url))
        zap._process.stop()
        wait_until(lambda: not zap.authenticator_running(), "the authenticator stopped")
        before = endpoint.calls
        with structlog.testing.capture_logs() as logs:
            # New connections, allowed or not, are refused: libzmq enforces the ZAP domain.
            assert not served_by(transports, curve_keys.client_url(memory_url))
            assert not served_by(transports, curve_keys.client_url(memory_url, "intruder"))
            wait_until(
                lambda: any(e.get("reason") == ZAP_DOWN for e in logs),
                "the server's log of the stopped authenticator",
                timeout=TIMEOUT,
            )
        assert endpoint.calls == before
        (line, *_) = [e for e in logs if e.get("reason") == ZAP_DOWN]
        assert line["log_level"] == "error"
        assert line["target"] == str(server.target)
        # Back: the next CURVE server starts it again, with every allow-list.
        other = za.RPCServer(
            transports(curve_keys.server_url(memory_url)),
            za.Target("other", server="b"),
            [Endpoint()],
        )
        with other:
            assert zap.authenticator_running()
            assert served_by(transports, curve_keys.client_url(memory_url))
            assert not served_by(transports, curve_keys.client_url(memory_url, "intruder"))
            assert served_by(transports, curve_keys.client_url(memory_url), topic="other")


def test_refusals_of_one_peer_are_logged_once_per_interval_with_a_count(
    curve_keys, memory_url, transports
):
    server = za.RPCServer(
        transports(curve_keys.server_url(memory_url)), za.Target("calc", server="a"), [Endpoint()]
    )
    public, secret = zmq.curve_keypair()
    context = zmq.Context()
    with server, structlog.testing.capture_logs() as logs, contextlib.ExitStack() as stack:
        stack.callback(context.term)
        # Raw clients with an unknown key, over and over: a flood from one address.
        for _ in range(20):
            sock = context.socket(zmq.DEALER)
            stack.callback(sock.close, 0)
            sock.setsockopt(zmq.CURVE_SERVERKEY, server.server_key.encode())
            sock.setsockopt(zmq.CURVE_PUBLICKEY, public)
            sock.setsockopt(zmq.CURVE_SECRETKEY, secret)
            sock.connect(server.address)
        wait_until(
            lambda: server.transport.stats.snapshot().get("auth_rejections", 0) >= 20,
            "twenty refused handshakes",
            timeout=TIMEOUT,
        )
        zap_lines = [e for e in logs if e["event"] == "CURVE client key not on the allow-list"]
        poller_lines = [e for e in logs if e["event"] == "refused a client"]
    # Far fewer lines than refusals (the interval is 10 s; this test takes less).
    assert len(zap_lines) == 1
    assert zap_lines[0]["count"] == 1
    assert zap_lines[0]["peer"] == "127.0.0.1"
    assert len(poller_lines) == 1


def test_a_peer_that_never_finishes_its_handshake_is_dropped(memory_url, transports):
    url = f"{memory_url}?handshake_timeout=0.5"
    server = za.RPCServer(transports(url), za.Target("calc", server="a"), [Endpoint()])
    with server:
        host, port = server.address.removeprefix("tcp://").rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=TIMEOUT) as conn:
            conn.settimeout(TIMEOUT)
            started = time.monotonic()
            # The server sends its greeting, waits for ours, then hangs up.
            while conn.recv(4096):
                pass
            assert time.monotonic() - started < 3.0


def test_a_bad_handshake_timeout_names_the_option():
    with pytest.raises(za.ConfigurationError, match="handshake_timeout"):
        za.Transport.from_url("zmq+memory://x?handshake_timeout=0")
