"""The report: figures beside their baselines, as a table or as JSON."""

from __future__ import annotations

import dataclasses
import json
import os
import platform
from typing import TYPE_CHECKING, Any, Final

import zmq
import zmq.auth

import zmqactors as za
from benchmarks.common import (
    CALLER_THREADS,
    CAST_BATCH,
    CURVE_COST_TARGET,
    FANOUT_BATCH,
    FANOUT_SERVERS,
    PAYLOAD_SIZE,
    PIPELINE_DEPTH,
    POOL_LISTENERS,
    BenchConfig,
    median,
)
from benchmarks.curve import curve_costs, format_curve_costs

if TYPE_CHECKING:
    from collections.abc import Sequence


@dataclasses.dataclass(frozen=True)
class Figure:
    """One row of the report: a zmqactors median beside its raw pyzmq baseline."""

    key: str
    label: str
    unit: str
    zmqactors: float
    raw: float
    baseline: str
    target: float | None = None

    @property
    def ratio(self) -> float:
        """The zmqactors figure divided by the raw one (NaN without a baseline)."""
        return self.zmqactors / self.raw if self.raw else float("nan")

    @property
    def met(self) -> bool | None:
        """Whether the ratio reaches the target (None when there is no target)."""
        return None if self.target is None else self.ratio >= self.target


_ECHO1: Final = "echo, 1 outstanding"
_ECHO100: Final = f"echo, {PIPELINE_DEPTH} outstanding"
_FANOUT_BASELINE: Final = f"{FANOUT_SERVERS} PUSH->PULL, 1 per server"
# The figures measured over repeats: key, label, unit, zmqactors sample, raw
# sample, baseline, target ratio (None: no target).
# Kept as a table, one figure per two lines, by hand.
# fmt: off
_MEASURED: Final[tuple[tuple[str, str, str, str, str, str, float | None], ...]] = (
    ("sync_calls_per_s", "sync calls/s (1 thread)", "1/s", "za_sync_rate", "raw_sync_rate",
     _ECHO1, 0.5),
    ("threaded_calls_per_s", f"sync calls/s ({CALLER_THREADS} threads)", "1/s",
     "za_threads_rate", "raw_pipelined_rate", _ECHO100, 0.8),
    ("async_calls_per_s", f"call_async/s ({PIPELINE_DEPTH} outstanding)", "1/s",
     "za_async_rate", "raw_pipelined_rate", _ECHO100, 0.8),
    ("casts_per_s", "casts/s delivered", "1/s", "za_cast_rate", "raw_push_rate",
     "PUSH->PULL", None),
    ("fanout_per_s", f"fanouts/s, all {FANOUT_SERVERS} servers got", "1/s",
     "za_fanout_rate", "raw_fanout_rate", _FANOUT_BASELINE, None),
    ("fanout_messages_per_s", f"fanout msgs/s, {FANOUT_SERVERS} servers total", "1/s",
     "za_fanout_total_rate", "raw_fanout_total_rate", _FANOUT_BASELINE, None),
    ("notifications_per_s", "notifications/s, 1 listener", "1/s", "za_notify_one_rate",
     "raw_push_rate", "PUSH->PULL", None),
    ("pool_notifications_per_s", f"notifications/s, pool of {POOL_LISTENERS}", "1/s",
     "za_notify_pool_rate", "raw_pool_rate", f"PUSH->{POOL_LISTENERS} PULL", None),
    ("curve_sync_calls_per_s", "sync calls/s (1 thread), CURVE", "1/s",
     "za_curve_sync_rate", "raw_curve_sync_rate", f"CURVE {_ECHO1}", 0.5),
    ("curve_async_calls_per_s", f"call_async/s ({PIPELINE_DEPTH} out), CURVE", "1/s",
     "za_curve_async_rate", "raw_curve_pipelined_rate", f"CURVE {_ECHO100}", 0.8),
    ("call_p50_us", "sync call latency p50 (us)", "us", "za_p50_us", "raw_p50_us", _ECHO1, None),
    ("call_p99_us", "sync call latency p99 (us)", "us", "za_p99_us", "raw_p99_us", _ECHO1, None),
)
# fmt: on
# The peak RSS figures: key, label, the results' key, baseline.
_MEMORY: Final = (
    ("client_peak_rss_mib", "client peak RSS (MiB)", "rss_mib", "raw client"),
    ("server_peak_rss_mib", "server peak RSS (MiB)", "server_rss_mib", "raw server"),
    ("sink_peak_rss_mib", "sink peak RSS (MiB)", "sink_rss_mib", "raw sink"),
)


def build_figures(raw: dict[str, Any], zmq_side: dict[str, Any]) -> list[Figure]:
    """The report's rows from the two sides' results (medians over repeats)."""
    r: dict[str, list[float]] = raw["samples"]
    z: dict[str, list[float]] = zmq_side["samples"]
    figures = [
        Figure(key, label, unit, median(z, za_key), median(r, raw_key), baseline, target)
        for key, label, unit, za_key, raw_key, baseline, target in _MEASURED
    ]
    figures.extend(
        Figure(key, label, "MiB", float(zmq_side[rss]), float(raw[rss]), baseline)
        for key, label, rss, baseline in _MEMORY
    )
    return figures


def environment() -> dict[str, Any]:
    """Versions and machine facts printed with the figures."""
    return {
        "python": platform.python_version(),
        "pyzmq": zmq.__version__,
        "libzmq": zmq.zmq_version(),
        "zmqactors": za.__version__,
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
    }


def format_figures(figures: Sequence[Figure]) -> str:
    """The figures as an aligned text table."""

    def number(value: float, unit: str) -> str:
        return f"{value:,.1f}" if unit == "MiB" else f"{value:,.0f}"

    header = (
        f"{'figure':<34}{'zmqactors':>12}{'raw pyzmq':>12}{'ratio':>9}"
        f"{'target':>10}{'met':>5}  baseline"
    )
    lines = [header, "-" * len(header)]
    for fig in figures:
        target = "-" if fig.target is None else f">= {fig.target:.1f}x"
        met = "" if fig.met is None else ("yes" if fig.met else "NO")
        lines.append(
            f"{fig.label:<34}{number(fig.zmqactors, fig.unit):>12}{number(fig.raw, fig.unit):>12}"
            f"{fig.ratio:>8.2f}x{target:>10}{met:>5}  {fig.baseline}"
        )
    return "\n".join(lines)


_LOSSES: Final = {
    "casts": "za_cast_lost",
    "fanout messages": "za_fanout_lost",
    "notifications (1 listener)": "za_notify_one_lost",
    f"notifications (pool of {POOL_LISTENERS})": "za_notify_pool_lost",
}


def losses(zmq_side: dict[str, Any]) -> dict[str, float]:
    """Messages sent but not delivered, over every measured round, by kind."""
    samples: dict[str, list[float]] = zmq_side["samples"]
    return {kind: sum(samples.get(key, [])) for kind, key in _LOSSES.items()}


def drop_counters(zmq_side: dict[str, Any]) -> dict[str, dict[str, int]]:
    """The zmqactors processes' nonzero transport counters, by process."""
    stats: dict[str, dict[str, int]] = zmq_side.get("transport_stats", {})
    return {process: dict(counters) for process, counters in stats.items() if counters}


def report_json(
    figures: Sequence[Figure], raw: dict[str, Any], zmq_side: dict[str, Any], config: BenchConfig
) -> str:
    """The figures, every sample and the settings as a JSON document."""
    document = {
        "figures": {
            fig.key: {
                "label": fig.label,
                "unit": fig.unit,
                "zmqactors": fig.zmqactors,
                "raw": fig.raw,
                "ratio": fig.ratio,
                "baseline": fig.baseline,
                "target": fig.target,
                "met": fig.met,
            }
            for fig in figures
        },
        "samples": {**raw["samples"], **zmq_side["samples"]},
        "curve_cost": {
            **curve_costs(raw, zmq_side),
            "target": CURVE_COST_TARGET,
        },
        "lost": losses(zmq_side),
        "transport_stats": zmq_side.get("transport_stats", {}),
        "config": {
            "duration": config.duration,
            "warmup": config.warmup,
            "repeat": config.repeat,
            "host": config.host,
            "payload_bytes": PAYLOAD_SIZE,
            "pipeline_depth": PIPELINE_DEPTH,
            "caller_threads": CALLER_THREADS,
            "cast_batch": CAST_BATCH,
            "fanout_batch": FANOUT_BATCH,
            "fanout_servers": FANOUT_SERVERS,
            "pool_listeners": POOL_LISTENERS,
        },
        "environment": environment(),
    }
    return json.dumps(document, indent=2)


def print_text(
    figures: Sequence[Figure], raw: dict[str, Any], zmq_side: dict[str, Any], config: BenchConfig
) -> None:
    """Print the report as text: the environment, the table, CURVE costs, losses, counters."""
    lost = losses(zmq_side)
    env = environment()
    print(
        f"zmqactors {env['zmqactors']} / Python {env['python']} / pyzmq {env['pyzmq']} "
        f"(libzmq {env['libzmq']}) / {env['cpus']} CPUs; {PAYLOAD_SIZE} B arguments, "
        f"TCP loopback {config.host}; median of {config.repeat} x {config.duration:g} s"
    )
    print()
    print(format_figures(figures))
    print()
    print(format_curve_costs(curve_costs(raw, zmq_side)))
    print(
        "sent - delivered, all rounds: "
        + ", ".join(f"{kind} {count:,.0f}" for kind, count in lost.items())
    )
    counters = drop_counters(zmq_side)
    print(
        "zmqactors transport counters: "
        + (
            "; ".join(
                f"{process} "
                + ", ".join(f"{name}={value}" for name, value in sorted(counts.items()))
                for process, counts in counters.items()
            )
            or "none"
        )
    )
