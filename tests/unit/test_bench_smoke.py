"""Smoke test of the benchmark program (benchmarks/, run from the checkout): it runs every system,
reports every figure, writes its JSON and its plot; and the report's parts, alone."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import common, report, run, sweep
from benchmarks.curve import curve_costs, format_curve_costs

pytestmark = pytest.mark.bench

REPO = Path(__file__).resolve().parents[2]
FIGURES = {
    "sync_calls_per_s",
    "threaded_calls_per_s",
    "async_calls_per_s",
    "client_cpu_us_per_call",
    "server_cpu_us_per_call",
    "threaded_p99_us",
    "threaded_p50_us",
    "call_p50_us",
    "call_p99_us",
    "curve_sync_calls_per_s",
    "curve_async_calls_per_s",
    "casts_per_s",
    "fanout_per_s",
    "fanout_messages_per_s",
    "notifications_per_s",
    "pool_notifications_per_s",
    "client_peak_rss_mib",
    "server_peak_rss_mib",
    "sink_peak_rss_mib",
}
# The figures with a Pyro5 peer (the sweep's); the others compare with raw pyzmq.
PYRO_FIGURES = {
    "sync_calls_per_s",
    "threaded_calls_per_s",
    "threaded_p99_us",
    "threaded_p50_us",
    "call_p50_us",
    "call_p99_us",
}
SYSTEMS = ("raw pyzmq", "Pyro5", "zmqactors")


@pytest.mark.timeout(240)
def test_quick_run_measures_every_system_and_writes_json_and_plot(tmp_path):
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }
    json_path, plot_path = tmp_path / "out" / "bench.json", tmp_path / "out" / "bench.png"
    command = ["--quick", "--json", str(json_path), "--plot", str(plot_path)]
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks", *command],
        capture_output=True,
        text=True,
        timeout=200,
        cwd=REPO,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    # The tables, and the progress lines of every system's round.
    assert "Concurrency sweep" in result.stdout
    for name in SYSTEMS:
        assert f"round 1/1: {name}" in result.stderr
    report_ = json.loads(json_path.read_text())
    assert set(report_["figures"]) == FIGURES
    for key, figure in report_["figures"].items():
        assert figure["peer"] == ("Pyro5" if key in PYRO_FIGURES else "raw pyzmq"), key
        for system in ("zmqactors", figure["peer"]):
            stat = figure[system]
            assert 0 < stat["min"] <= stat["median"] <= stat["max"], (key, system, stat)
        assert math.isfinite(figure["ratio"]), key
        assert figure["met"] in ((None,) if figure["target"] is None else (True, False)), key
    # The sweep: every system at every thread count, each with its CDF.
    fractions = report_["cdf"]["fractions"]
    for name in SYSTEMS:
        assert set(report_["sweep"][name]) == {str(t) for t in common.SWEEP_THREADS}
        for threads, point in report_["sweep"][name].items():
            assert point["rate"]["median"] > 0, (name, threads)
            assert 0 < point["p50_us"]["median"] <= point["p99_us"]["median"], (name, threads)
            cdf = report_["cdf"]["latency_us"][name][threads]
            assert len(cdf) == len(fractions)
            assert cdf == sorted(cdf), (name, threads)
    assert plot_path.read_bytes().startswith(b"\x89PNG")
    # Casts, fanouts and notifications are paced so that nothing is dropped.
    assert report_["lost"], report_
    assert all(count == 0 for count in report_["lost"].values()), report_["lost"]
    assert set(report_["transport_stats"]) == {
        "client",
        "curve_client",
        "server",
        *(common.sink_name(i) for i in range(common.FANOUT_SERVERS)),
    }
    samples = report_["samples"]
    assert samples["za_fanout_total_rate"][0] > samples["za_fanout_rate"][0]
    # CURVE on and off were measured in the same run, for both sides.
    costs = report_["curve_cost"]
    assert set(costs) == {
        "zmqactors_sync",
        "zmqactors_pipelined",
        "raw_sync",
        "raw_pipelined",
        "target",
    }
    assert all(math.isfinite(value) and value < 1 for value in costs.values()), costs
    # The CURVE client's handshakes were all accepted.
    assert "auth_failures" not in report_["transport_stats"]["curve_client"]


def test_delivery_window_spans_every_receiver():
    reports = [
        {"count": 3.0, "first": 10.0, "last": 12.0},
        {"count": 2.0, "first": 9.5, "last": 11.0},
        {"count": 0.0, "first": 0.0, "last": 0.0},
    ]
    assert common.delivery_window(reports) == {"total": 5.0, "smallest": 0.0, "window": 2.5}
    assert common.delivery_window(reports[:2])["smallest"] == 2.0
    assert common.delivery_window([])["window"] == 0.0


def test_sinks_listen_as_one_listener_then_a_pool():
    topics = [common.sink_notify_topics(i) for i in range(common.FANOUT_SERVERS)]
    one = [i for i, t in enumerate(topics) if common.NOTIFY_ONE_TOPIC in t]
    pool = [i for i, t in enumerate(topics) if common.NOTIFY_POOL_TOPIC in t]
    assert len(one) == 1
    assert len(pool) == common.POOL_LISTENERS


def test_percentile_is_nearest_rank():
    values = [float(v) for v in range(1, 101)]
    assert common.percentile(values, 0.5) == 50.0
    assert common.percentile(values, 0.99) == 99.0
    assert common.percentile(values, 1.0) == 100.0
    assert common.percentile([7.0], 0.99) == 7.0
    assert math.isnan(common.percentile([], 0.5))


def test_curve_costs_compare_each_side_with_itself():
    samples = {
        "raw_t1_rate": [1000.0],
        "raw_curve_sync_rate": [800.0],
        "raw_pipelined_rate": [4000.0],
        "raw_curve_pipelined_rate": [2000.0],
        "za_t1_rate": [500.0],
        "za_curve_sync_rate": [450.0],
        "za_async_rate": [3000.0],
        "za_curve_async_rate": [2400.0],
    }
    costs = curve_costs(samples)
    assert costs == pytest.approx(
        {
            "zmqactors_sync": 0.1,
            "zmqactors_pipelined": 0.2,
            "raw_sync": 0.2,
            "raw_pipelined": 0.5,
        }
    )
    text = format_curve_costs(costs)
    assert "sync 10.0%, pipelined 20.0% (target < 25%: yes)" in text
    assert "raw pyzmq: sync 20.0%, pipelined 50.0%" in text


def test_table_shows_each_system_with_its_spread_the_ratio_and_the_target():
    figure = report.Figure(
        "sync_calls_per_s",
        "sync calls/s",
        "1/s",
        {
            "za": report.Stat.of([3000.0, 2900.0, 3100.0]),
            "pyro": report.Stat.of([6000.0, 5000.0, 7000.0]),
        },
        "pyro",
        "echo",
        report.Target("ratio", 0.8, at_least=True),
    )
    table = report.format_figures([figure])
    assert "3,000 [2,900..3,100]" in table
    assert "6,000 [5,000..7,000]" in table
    assert "0.50x Pyro5" in table
    assert ">= 0.8x" in table
    assert "MISSED" in table


def test_targets_on_a_value_or_a_ratio_either_way():
    cpu = report.Target("value", 25.0, at_least=False)
    assert cpu.met(ratio=9.0, value=20.0)
    assert not cpu.met(ratio=0.1, value=26.0)
    assert str(cpu) == "<= 25"
    p99 = report.Target("ratio", 1.0, at_least=False)
    assert p99.met(ratio=0.9, value=5000.0)
    assert not p99.met(ratio=1.1, value=1.0)
    assert str(p99) == "<= 1x"


def test_results_keep_each_round_and_the_median_cdf():
    results = report.Results()
    for rate, cdf in ((100.0, [1.0, 2.0]), (300.0, [3.0, 6.0]), (200.0, [2.0, 4.0])):
        results.add_round({"figures": {"za_t1_rate": rate}, "cdfs": {"za_t1": cdf}})
    assert results.samples["za_t1_rate"] == [100.0, 300.0, 200.0]
    assert results.cdf("za", 1) == [2.0, 4.0]
    assert results.cdf("pyro", 1) == []
    assert report.Stat.of(results.samples["za_t1_rate"]) == report.Stat(200.0, 100.0, 300.0)
    assert math.isnan(report.Stat.of([]).median)


def test_sweep_point_times_every_thread_and_closes_each_caller():
    closed = []

    def open_caller():
        return (lambda: sum(range(100))), (lambda: closed.append(True))

    figures, cdf = sweep.sweep_point(open_caller, 4, 0.01, 0.1)
    assert figures["rate"] > 0
    assert 0 < figures["p50_us"] <= figures["p99_us"]
    assert len(cdf) == len(sweep.CDF_FRACTIONS)
    assert cdf == sorted(cdf)
    assert len(closed) == 4


@pytest.mark.timeout(60)
def test_sweep_point_raises_a_callers_failure_without_waiting_out_the_window():
    calls = []

    def failing_caller():
        def call():
            calls.append(1)
            if len(calls) > 50:
                raise RuntimeError("server gone")

        return call, (lambda: None)

    with pytest.raises(RuntimeError, match="server gone"):
        # Only the failed thread stops early; the window is short for the others.
        sweep.sweep_point(failing_caller, 3, 0.0, 0.5)


def test_cpu_seconds_of_another_process_follows_its_own_clock():
    pid = os.getpid()
    before, own = common.cpu_seconds(pid), common.cpu_seconds()
    while common.cpu_seconds() - own < 0.3:
        sum(range(1000))
    # /proc counts in clock ticks (10 ms): allow a few.
    assert common.cpu_seconds(pid) - before >= 0.25


def test_json_alone_prints_it_and_a_path_writes_it():
    assert run._parse_args(["--json"]).json == "-"
    assert run._parse_args([]).json == run.DEFAULT_JSON
    assert run._parse_args(["--json", "x.json", "--plot", "-"]).plot == "-"


def test_bad_arguments_exit_with_usage_error(capsys):
    with pytest.raises(SystemExit) as exc_info:
        run.main(["--repeat", "0"])
    assert exc_info.value.code == 2
    assert "--repeat must be from 1 to 100, not 0" in capsys.readouterr().err


def test_the_prototype_without_hand_offs_runs_and_reports_each_system():
    """``make bench-prototype``: every system answers, the table names each, for 1 and N threads."""
    args = ["--rounds", "1", "--duration", "0.2", "--threads", "2"]
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.prototype", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    for name in ("raw pyzmq echo", "prototype (no hand-off)", "zmqactors"):
        assert f" 1 thread(s)  {name}" in done.stdout
        assert f" 2 thread(s)  {name}" in done.stdout
