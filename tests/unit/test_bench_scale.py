"""Smoke test of the scale benchmark (``make bench-scale``, benchmarks/scale.py): tiny Ns, every
figure reported, a failed N reported and the next one run, bad arguments refused."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import scale, scale_report, scale_run
from benchmarks.common import BenchError
from benchmarks.scale_matchmaker import CommandCounter, command_delta, private_redis
from benchmarks.scale_procs import first_line
from zmqactors.options import parse_url

pytestmark = pytest.mark.bench

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(90)
def test_tiny_run_reports_every_figure_for_each_n(tmp_path):
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }
    plot = importlib.util.find_spec("matplotlib") is not None
    command = [
        sys.executable,
        "-m",
        "benchmarks.scale",
        "--servers",
        "3,2",
        "--per-process",
        "2",
        "--duration",
        "0.3",
        "--fanouts",
        "2",
        "--repeat",
        "1",
        "--clients",
        "2",
        "--json",
        str(tmp_path / "scale.json"),
    ]
    if plot:
        command += ["--plot", str(tmp_path / "scale.png")]
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=80, cwd=REPO, env=env, check=False
    )
    assert result.returncode == 0, result.stderr
    document = json.loads((tmp_path / "scale.json").read_text())
    runs = document["runs"]
    assert [run["servers"] for run in runs] == [2, 3]
    assert [run["processes"] for run in runs] == [1, 2]
    for run in runs:
        assert run["error"] is None, run
        assert set(run["figures"]) == {column.key for column in scale_report.COLUMNS}
        assert all(math.isfinite(value) and value > 0 for value in run["figures"].values()), run
        # Every fanout cast reached every server: none left out of the median.
        assert run["fanout_incomplete"] == 0
        assert len(run["fanout_times_ms"]) == 2
        assert run["routes_found"] == run["servers"]
        # Both client processes took part in the spread calls.
        assert len(run["client_stats"]) == 2
    assert runs[1]["figures"]["servers_per_process"] == 2
    assert set(document["growth"]["fanout_ms"]["ratios"]) == {"2", "3"}
    assert "servers_per_process" not in document["growth"]
    assert document["runs"][0]["samples"]["spread_calls_per_s"][0] > 0
    # The progress lines name each N as it runs.
    assert "N=2: starting 1 server process(es)" in result.stderr
    assert "N=3: starting 2 server process(es)" in result.stderr
    assert "growth (ratio to N=2" in result.stdout
    if plot:
        assert (tmp_path / "scale.png").read_bytes().startswith(b"\x89PNG")


def test_a_failed_n_is_reported_and_the_next_one_runs(capsys):
    def measure_one(n, say):
        say("measuring")
        if n == 100:
            raise BenchError("servers-0 exited (code 1) before 'ready'\nmore detail")
        if n == 1000:
            return {
                "servers": n,
                "figures": {},
                "error": "ZMQError: x",
                "failed_in": "spread",
                "at_failure": {
                    "process": "client-0",
                    "fds": 1023.0,
                    "threads": 5.0,
                    "rss_mib": 60.0,
                },
            }
        return {
            "servers": n,
            "figures": {"fanout_ms": 2.0},
            "error": None,
            "fanout_incomplete": 2 if n == 10 else 0,
            "fanout_fewest_reached": 7.0,
        }

    progress = scale.Progress([10, 100, 1000, 2000], fixed=1.0)
    runs = scale.run_all([10, 100, 1000, 2000], measure_one, progress)
    assert [run["servers"] for run in runs] == [10, 100, 1000, 2000]
    assert runs[1]["error"] == "BenchError: servers-0 exited (code 1) before 'ready'"
    assert runs[1]["failed_in"] == "setup"
    assert runs[3]["error"] is None
    assert "N=2,000: measuring" in capsys.readouterr().err
    table = scale_report.format_table(runs, scale_report.CALL_COLUMNS)
    assert "N=1,000 FAILED (spread): ZMQError: x" in table
    assert (
        "N=10: 2 fanout cast(s) did not reach every server in time (the fewest reached 7)" in table
    )
    assert "N=2,000: " not in table
    assert "client-0 then: 1,023 fds, 5 threads, 60.0 MiB" in table


def test_an_interrupt_keeps_the_ns_measured_before_it(capsys):
    measured = []

    def measure_one(n, say):
        del say
        measured.append(n)
        if n == 100:
            raise KeyboardInterrupt
        return {"servers": n, "figures": {"fanout_ms": 2.0}, "error": None}

    runs = scale.run_all([10, 100, 1000], measure_one, scale.Progress([10, 100, 1000], 1.0))
    assert measured == [10, 100]
    assert [run["error"] for run in runs] == [None, scale.INTERRUPTED]
    assert "N=100: interrupted" in capsys.readouterr().err


def test_growth_is_named_from_the_log_log_slope():
    runs = [
        {
            "servers": n,
            "figures": {"fanout_ms": 0.02 * n, "client_threads": 6.0, "lookup_ms": 1 / n},
        }
        for n in (10, 100, 1000)
    ]
    table = scale_report.growth(runs)
    assert table["fanout_ms"]["growth"] == "O(N)"
    assert table["fanout_ms"]["ratios"]["1000"] == pytest.approx(100.0)
    assert table["client_threads"]["growth"] == "O(1)"
    assert table["lookup_ms"]["growth"] == "O(1/N)"
    assert scale_report.slope_label(0.5) == "O(N^0.50)"
    assert math.isnan(scale_report.log_slope([(10.0, 1.0)]))


def test_a_failure_is_one_line_with_controls_escaped():
    assert first_line(OSError("Too many open files\nmore")) == "OSError: Too many open files"
    assert first_line(ValueError("\x1b[2Jboom\u202e")) == "ValueError: \\x1b[2Jboom\\u202e"
    assert first_line(KeyError()) == "KeyError"


def test_servers_are_spread_evenly_within_the_per_process_bound():
    assert scale_run.split(10, 200) == [(0, 10)]
    assert scale_run.split(1000, 200) == [(0, 200), (200, 200), (400, 200), (600, 200), (800, 200)]
    assert scale_run.split(5, 2) == [(0, 2), (2, 2), (4, 1)]
    shares = scale_run.split(1001, 200)
    assert sum(count for _, count in shares) == 1001
    assert max(count for _, count in shares) <= 200


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["--servers", "10,abc"], "--servers"),
        (["--servers", "0"], "--servers"),
        (["--per-process", "0"], "--per-process"),
        (["--clients", "100"], "--clients"),
        (["--duration", "0"], "--duration"),
        (["--repeat", "0"], "--repeat"),
        (["--matchmaker", "zmq+nope://x"], "--matchmaker"),
        (["--matchmaker", "zmq+memory://"], "one process"),
        (["--redis", "--matchmaker", "zmq://"], "--redis"),
    ],
)
def test_bad_arguments_exit_with_usage_error_naming_the_option(capsys, argv, named):
    with pytest.raises(SystemExit) as exc_info:
        scale.main(argv)
    assert exc_info.value.code == 2
    assert named in capsys.readouterr().err


def test_private_redis_counts_commands_and_is_gone_after(tmp_path):
    if shutil.which("redis-server") is None:
        pytest.skip("no redis-server on PATH (make services)")
    redis = pytest.importorskip("redis")
    with private_redis(tmp_path / "redis") as url:
        counter = CommandCounter(parse_url(url))
        client = redis.Redis(port=int(url.rpartition(":")[2].split("/")[0]), socket_timeout=2)
        before = counter.commands()
        client.set("key", "value")
        delta = command_delta(before, counter.commands())
        # The client's connection says HELLO first; the counter's own INFO is left out.
        assert delta["set"] == 1
        assert "info" not in delta
        counter.close()
    with pytest.raises(redis.ConnectionError):
        client.ping()
