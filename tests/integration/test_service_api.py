"""The service API (issue #17): ``zmqactors ping``, ``info`` and ``stats`` against real servers.

Every RPC server answers ``ping``, ``info`` and ``stats`` in namespace
``zmqactors`` unless its ``service_api`` option is off; the command line asks
every server of a topic at once and prints one row (or JSON line) per server.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

import zmqactors as za
from tests.conftest import with_query
from tests.helpers import free_port

pytestmark = pytest.mark.integration

TOPIC = "svc"
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "rpc_server.py"
RUN_TIMEOUT = 60.0


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "zmqactors.cli", *args],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )


def test_ping_info_and_stats_answer_for_the_example_server(matchmaker_url, spawn_server):
    spawn_server(TOPIC, "ex-1", script=EXAMPLE)
    spawn_server(TOPIC, "ex-2", script=EXAMPLE)
    url = ("--url", matchmaker_url)
    # Traffic first, so the counters have something to count.
    assert run(*url, "call", TOPIC, "add", "a=1", "b=2", "--server", "ex-1").stdout.strip() == "3"
    failed = run(*url, "call", TOPIC, "divide", "a=1", "b=0", "--server", "ex-1")
    assert failed.returncode == 1

    ping = run(*url, "ping", TOPIC)
    assert ping.returncode == 0, ping.stderr
    rows = ping.stdout.splitlines()
    assert rows[0].split() == ["SERVER", "ADDRESS", "RTT"]
    assert [row.split()[0] for row in rows[1:]] == ["ex-1", "ex-2"]
    assert all(row.endswith(" ms") for row in rows[1:])

    pings = [json.loads(line) for line in run(*url, "ping", TOPIC, "--json").stdout.splitlines()]
    assert [p["server"] for p in pings] == ["ex-1", "ex-2"]
    assert all(p["error"] is None and 0 < p["rtt_ms"] < 5000 for p in pings)

    info = json.loads(run(*url, "info", TOPIC, "--server", "ex-1", "--json").stdout)
    assert info["server"] == "ex-1"
    assert info["topic"] == TOPIC
    assert info["address"].startswith("tcp://")
    assert info["curve"] is False
    assert info["zmqactors_version"]
    assert info["uptime"] >= 0
    (endpoint,) = info["endpoints"]
    assert endpoint["class"].endswith("Calculator")
    assert endpoint["methods"]["add"].startswith("(a")
    text = run(*url, "info", TOPIC, "--server", "ex-1")
    assert text.returncode == 0
    assert "add(a" in text.stdout

    stats = json.loads(run(*url, "stats", TOPIC, "--server", "ex-1", "--json").stdout)
    # Two calls, one of which raised; the service API's own calls are not counted.
    assert (stats["calls"], stats["errors"], stats["in_flight"]) == (2, 1, 0)
    assert 0 < stats["p50"] <= stats["p99"]
    assert stats["transport"]["busy_refused"] == 0
    table = run(*url, "stats", TOPIC)
    assert table.returncode == 0
    assert table.stdout.splitlines()[0].split()[:3] == ["SERVER", "CALLS", "ERRORS"]


def test_a_topic_without_servers_exits_3(matchmaker_url):
    result = run("--url", matchmaker_url, "ping", "nobody-here")
    assert result.returncode == 3
    assert "NoRespondersError" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_server_with_the_service_api_off_does_not_answer_it(matchmaker_url, spawn_server):
    spawn_server(TOPIC, "quiet", url=with_query(matchmaker_url, "service_api=false"))
    result = run("--url", matchmaker_url, "ping", TOPIC, "--json", "--timeout", "5")
    assert result.returncode == 3
    (line,) = result.stdout.splitlines()
    assert "NoSuchMethod" in json.loads(line)["error"]


def test_the_service_namespace_is_reserved(transport):
    class Sneaky:
        target = za.Target("x", namespace="zmqactors")

        def ping(self) -> str:
            return "mine"

    with pytest.raises(ValueError, match="reserved"):
        za.RPCServer(transport, za.Target(TOPIC, server="s"), [Sneaky()])


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        return response.read().decode()


def test_a_prometheus_scrape_of_the_example_server_returns_its_counters(
    matchmaker_url, spawn_server
):
    port = free_port("127.0.0.1")
    url = with_query(matchmaker_url, f"metrics_port={port}")
    spawn_server(TOPIC, "metered", url=url, script=EXAMPLE)
    cli_url = ("--url", matchmaker_url)
    assert run(*cli_url, "call", TOPIC, "add", "a=1", "b=2").returncode == 0
    assert run(*cli_url, "call", TOPIC, "divide", "a=1", "b=0").returncode == 1
    text = scrape(port)
    samples = {
        (sample.name, sample.labels.get("server"), sample.labels.get("le")): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.labels.get("topic", TOPIC) == TOPIC
    }
    assert samples["zmqactors_server_requests_total", "metered", None] == 2
    assert samples["zmqactors_server_errors_total", "metered", None] == 1
    assert samples["zmqactors_server_in_flight", "metered", None] == 0
    assert samples["zmqactors_server_handling_seconds_bucket", "metered", "+Inf"] == 2
    assert samples["zmqactors_server_handling_seconds_count", "metered", None] == 2
    assert "# TYPE zmqactors_server_handling_seconds histogram" in text


def test_the_metrics_endpoint_listens_on_loopback_by_default_and_closes_with_the_transport():
    port = free_port("127.0.0.1")
    transport = za.Transport.from_url(f"zmq+memory://metrics?metrics_port={port}")
    try:
        transport.runtime()
        text = scrape(port)
        assert "zmqactors" in text or text == ""
    finally:
        transport.close()
    with pytest.raises(urllib.error.URLError):
        scrape(port)
