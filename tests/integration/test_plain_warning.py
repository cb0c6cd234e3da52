"""A server bound beyond loopback without CURVE warns once (issue #12, "small ones")."""

from __future__ import annotations

import uuid

import pytest
import structlog

import zmqactors as za

pytestmark = [pytest.mark.integration]

TIMEOUT = 5.0
WARNING = "server bound beyond loopback without CURVE"


class Endpoint:
    def ping(self) -> str:
        return "pong"


def warnings(logs: list[dict]) -> list[dict]:
    return [e for e in logs if e["event"].startswith(WARNING)]


def serve(transport: za.Transport, server: str) -> za.RPCServer:
    rpc = za.RPCServer(transport, za.Target("plain", server=server), [Endpoint()])
    rpc.start()
    return rpc


def stop(*servers: za.RPCServer) -> None:
    for server in servers:
        server.stop()
        server.wait(timeout=TIMEOUT)


def test_a_plain_server_on_every_interface_warns_once_with_its_address():
    url = f"zmq+memory://plain-{uuid.uuid4().hex}?bind_address=0.0.0.0"
    with za.Transport.from_url(url) as transport, structlog.testing.capture_logs() as logs:
        servers = [serve(transport, "a"), serve(transport, "b")]
        stop(*servers)
    (line,) = warnings(logs)
    assert line["log_level"] == "warning"
    assert line["address"] == servers[0].address
    assert line["bind_address"] == "0.0.0.0"  # noqa: S104 - compared, never bound


def test_a_plain_server_on_loopback_does_not_warn():
    url = f"zmq+memory://plain-{uuid.uuid4().hex}"
    with za.Transport.from_url(url) as transport, structlog.testing.capture_logs() as logs:
        stop(serve(transport, "a"))
    assert warnings(logs) == []


def test_a_curve_server_on_every_interface_does_not_warn(curve_keys):
    url = curve_keys.server_url(f"zmq+memory://plain-{uuid.uuid4().hex}?bind_address=0.0.0.0")
    with za.Transport.from_url(url) as transport, structlog.testing.capture_logs() as logs:
        stop(serve(transport, "a"))
    assert warnings(logs) == []
