"""CURVE across fork(): the child builds its own ZAP authenticator; the parent keeps its own."""

from __future__ import annotations

import os

import pytest

import zmqactors as za
from zmqactors.net import zap

pytestmark = pytest.mark.fork

TIMEOUT = 10.0


def test_a_forked_child_serves_curve_with_its_own_authenticator(
    curve_keys, matchmaker_url, fork_child, endpoint_class, kit
):
    # The server's key pair is on the allow-list too, so one transport serves and calls.
    url = curve_keys.server_url(matchmaker_url)
    with (
        za.Transport.from_url(url) as transport,
        za.Transport.from_url(curve_keys.client_url(matchmaker_url)) as client_transport,
        za.Transport.from_url(curve_keys.client_url(matchmaker_url, "intruder")) as intruder,
        za.RPCServer(
            transport, za.Target("curve.fork", server="parent"), [endpoint_class("parent")]
        ) as parent_server,
    ):
        assert parent_server.server_key == curve_keys.public["server"]
        assert zap.authenticator_running()
        client = za.RPCClient(client_transport, za.Target("curve.fork"), timeout=TIMEOUT)
        assert client.prepare(server="parent").call("pid") == os.getpid()

        def child(channel):
            report = {"inherited_running": zap.authenticator_running()}
            # The inherited server does not run here; a new one serves with CURVE.
            report["inherited_state"] = parent_server.state
            server = za.RPCServer(
                transport, za.Target("curve.fork", server="child"), [endpoint_class("child")]
            )
            server.start()
            report["running_after_start"] = zap.authenticator_running()
            report["owned_here"] = zap._process._pid == os.getpid()
            report["server_key"] = server.server_key
            channel.send("ready")
            assert channel.recv(TIMEOUT) == "done"
            # The refusal is counted from the ROUTER's socket monitor, asynchronously:
            # the intruder's client may have seen its SecurityError first.
            kit.wait_until(
                lambda: transport.stats.snapshot().get("auth_rejections", 0) >= 1,
                "the child's server to count the intruder's refusal",
            )
            report["rejections"] = transport.stats.snapshot()["auth_rejections"]
            server.stop()
            server.wait(timeout=TIMEOUT)
            transport.close()
            return report

        proc = fork_child(child)
        assert proc.recv() == "ready"
        # The parent calls the child's server through CURVE, and its own still works.
        child_pid = client.prepare(server="child").call("pid")
        assert child_pid == proc.pid
        assert client.prepare(server="parent").call("pid") == os.getpid()
        with pytest.raises(za.SecurityError, match="allow-list"):
            za.RPCClient(intruder, za.Target("curve.fork", server="child"), timeout=2).call("pid")
        proc.send("done")
        report = proc.join()
        assert report == {
            "inherited_running": False,
            "inherited_state": "new",
            "running_after_start": True,
            "owned_here": True,
            "server_key": curve_keys.public["server"],
            "rejections": report["rejections"],
        }
        assert report["rejections"] >= 1
        # After the child is gone the parent's authenticator and server are untouched.
        assert zap.authenticator_running()
        assert client.prepare(server="parent").call("echo", value=5) == 5
