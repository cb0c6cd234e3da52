"""Smoke test of the benchmark program (benchmarks/, run from the checkout): it runs and reports
every figure."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import common, report, run
from benchmarks.curve import curve_costs, format_curve_costs

pytestmark = pytest.mark.bench

REPO = Path(__file__).resolve().parents[2]
FIGURES = {
    "sync_calls_per_s",
    "threaded_calls_per_s",
    "async_calls_per_s",
    "casts_per_s",
    "fanout_per_s",
    "fanout_messages_per_s",
    "notifications_per_s",
    "pool_notifications_per_s",
    "curve_sync_calls_per_s",
    "curve_async_calls_per_s",
    "call_p50_us",
    "call_p99_us",
    "client_peak_rss_mib",
    "server_peak_rss_mib",
    "sink_peak_rss_mib",
}


@pytest.mark.timeout(150)
def test_quick_run_prints_every_figure_as_json():
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--repeat", "1", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert set(report["figures"]) == FIGURES
    for key, figure in report["figures"].items():
        assert figure["zmqactors"] > 0, key
        assert figure["raw"] > 0, key
        assert math.isfinite(figure["ratio"]), key
    # Casts, fanouts and notifications are paced so that nothing is dropped.
    assert report["lost"], report
    assert all(count == 0 for count in report["lost"].values()), report["lost"]
    assert set(report["transport_stats"]) == {
        "client",
        "curve_client",
        "server",
        *(common.sink_name(i) for i in range(common.FANOUT_SERVERS)),
    }
    assert report["samples"]["za_fanout_total_rate"][0] > report["samples"]["za_fanout_rate"][0]
    # CURVE on and off were measured in the same run, for both sides.
    costs = report["curve_cost"]
    assert set(costs) == {
        "zmqactors_sync",
        "zmqactors_pipelined",
        "raw_sync",
        "raw_pipelined",
        "target",
    }
    assert all(math.isfinite(value) and value < 1 for value in costs.values()), costs
    # The CURVE client's handshakes were all accepted.
    assert "auth_failures" not in report["transport_stats"]["curve_client"]


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
    raw = {
        "samples": {
            "raw_sync_rate": [1000.0],
            "raw_curve_sync_rate": [800.0],
            "raw_pipelined_rate": [4000.0],
            "raw_curve_pipelined_rate": [2000.0],
        }
    }
    zmq_side = {
        "samples": {
            "za_sync_rate": [500.0],
            "za_curve_sync_rate": [450.0],
            "za_async_rate": [3000.0],
            "za_curve_async_rate": [2400.0],
        }
    }
    costs = curve_costs(raw, zmq_side)
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


def test_table_shows_ratio_and_target():
    figure = report.Figure("sync_calls_per_s", "sync calls/s", "1/s", 3000.0, 6000.0, "echo", 0.5)
    table = report.format_figures([figure])
    assert "0.50x" in table
    assert ">= 0.5x" in table
    assert "yes" in table


def test_bad_arguments_exit_with_usage_error(capsys):
    with pytest.raises(SystemExit) as exc_info:
        run.main(["--repeat", "0"])
    assert exc_info.value.code == 2
    assert "--repeat" in capsys.readouterr().err
