"""IPv6 beyond loopback: one server for both families, and hosts on an IPv6-only link.

The other integration tests run on ::1 as well as on 127.0.0.1 (the
``both_families`` mark); these are the cases a loopback cannot show.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid

import pytest

import zmqactors as za
from zmqactors.matchmaker import create_matchmaker
from zmqactors.options import parse_url
from zmqactors.topics import matchmaker_key

pytestmark = pytest.mark.integration

TOPIC = "calc.v6"
TIMEOUT = 10.0
RUN_TIMEOUT = 60.0


def wait_for_casts(client: za.RPCClient, expected: list[str]) -> None:
    deadline = time.monotonic() + TIMEOUT
    while sorted(client.call("recorded")) != expected:
        assert time.monotonic() < deadline, f"casts: {client.call('recorded')} != {expected}"


def test_ipv4_and_ipv6_clients_reach_one_server_bound_on_all_interfaces(
    spawn_server, matchmaker_url, with_query, tmp_path
):
    server = spawn_server(
        TOPIC, "dual", url=with_query(matchmaker_url, "bind_address=::&host=127.0.0.1")
    )
    port = int(server.address.rsplit(":", 1)[1])
    assert server.address == f"tcp://127.0.0.1:{port}"
    # A second matchmaker names the same socket at its IPv6 address: what
    # IPv6-only clients of a dual-stack server would be told.
    ipv6_url = f"zmq+file://{tmp_path}/mm6"
    settings = parse_url(ipv6_url)
    spec = settings.matchmaker
    ipv6_routes = create_matchmaker(spec.kind, spec.location)
    try:
        # Within the TTL: the file matchmaker ignores routes that expire later.
        ipv6_routes.register(
            matchmaker_key(za.Target(TOPIC)),
            "dual",
            f"tcp://[::1]:{port}",
            settings.matchmaker_ttl,
        )
    finally:
        ipv6_routes.close()
    with (
        za.Transport.from_url(matchmaker_url) as ipv4,
        za.Transport.from_url(ipv6_url) as ipv6,
    ):
        for transport, family in ((ipv4, "ipv4"), (ipv6, "ipv6")):
            client = za.RPCClient(transport, za.Target(TOPIC), timeout=TIMEOUT)
            assert client.call("whoami") == "dual"
            client.cast("record", value=family)
        wait_for_casts(client, ["ipv4", "ipv6"])


class Echo:
    def echo(self, value: object) -> object:
        return value


def test_a_port_range_binds_on_ipv6():
    url = f"zmq+memory://{uuid.uuid4().hex}?bind_address=[::1]&port_min=20000&port_max=60000"
    with (
        za.Transport.from_url(url) as transport,
        za.RPCServer(transport, za.Target(TOPIC, server="ranged"), [Echo()]) as server,
    ):
        host, port = server.address.rsplit(":", 1)
        assert host == "tcp://[::1]"
        assert 20000 <= int(port) <= 60000
        client = za.RPCClient(transport, za.Target(TOPIC), timeout=TIMEOUT)
        assert client.call("echo", value="v6") == "v6"


def test_a_bind_address_that_does_not_resolve_names_the_option_and_the_value():
    url = f"zmq+memory://{uuid.uuid4().hex}?bind_address=no-such-host.invalid"
    with za.Transport.from_url(url) as transport:
        server = za.RPCServer(transport, za.Target(TOPIC, server="nowhere"), [Echo()])
        with pytest.raises(za.ConfigurationError) as info:
            server.start()
    assert "option zmq.bind_address" in str(info.value)
    assert "'no-such-host.invalid'" in str(info.value)


# A client on its own host: every pattern, printed as one JSON object.
CLIENT = """
import json, sys, time
import zmqactors as za

url, topic = sys.argv[1:3]
with za.Transport.from_url(url) as transport:
    client = za.RPCClient(transport, za.Target(topic), timeout=10)
    out = {
        "call": client.call("add", a=2, b=40),
        "direct": client.prepare(server="far").call("whoami"),
    }
    client.cast("record", value="cast")
    client.prepare(fanout=True).cast("record", value="fanout")
    client.prepare(ack=True).cast("record", value="acked")
    deadline = time.monotonic() + 10
    while len(client.call("recorded")) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    out["casts"] = sorted(client.call("recorded"))
    notifier = za.Notifier(transport, publisher_id="client", topics=("notes",))
    notifier.info("v6.event", {"id": 7})
    out["stats"] = dict(transport.stats.snapshot())
    print(json.dumps(out), flush=True)
"""


def test_every_pattern_between_hosts_on_an_ipv6_only_link(
    ipv6_only_hosts, start_redis, spawn_server, spawn_listener, curve_keys
):
    hosts = ipv6_only_hosts
    for host in ("client", "server", "redis"):
        assert hosts.ipv4_addresses(host) == "", f"{host} has IPv4"
    # Protected mode refuses clients of other hosts; this Redis is only on the test's link.
    redis = start_redis(
        "--protected-mode",
        "no",
        host=hosts.addresses["redis"],
        prefix=hosts.prefix("redis"),
        port=6379,
    )
    assert redis.url.startswith(f"zmq+redis://[{hosts.addresses['redis']}]:")
    served_url = curve_keys.server_url(f"{redis.url}?bind_address={hosts.addresses['server']}")
    server = spawn_server(TOPIC, "far", url=served_url, prefix=hosts.prefix("server"))
    assert server.address.startswith(f"tcp://[{hosts.addresses['server']}]:")
    listener = spawn_listener(
        "notes", "far-listener", url=served_url, prefix=hosts.prefix("server")
    )

    result = subprocess.run(
        [
            *hosts.prefix("client"),
            sys.executable,
            "-c",
            CLIENT,
            curve_keys.client_url(redis.url),
            TOPIC,
        ],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["call"] == 42
    assert out["direct"] == "far"
    assert out["casts"] == ["acked", "cast", "fanout"]
    assert out["stats"].get("auth_failures", 0) == 0
    listener.read_lines(lambda lines: "got 7 client v6.event" in lines, timeout=TIMEOUT)
