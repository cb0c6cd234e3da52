"""The report: zmqactors beside its peers (Pyro5, raw pyzmq), as tables, JSON and a plot."""

from __future__ import annotations

import dataclasses
import math
import os
import platform
from typing import TYPE_CHECKING, Any, Final, Literal

import zmq

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
    SWEEP_THREADS,
    SYSTEM_NAMES,
    SYSTEMS,
    BenchConfig,
    median,
)
from benchmarks.curve import curve_costs, format_curve_costs
from benchmarks.sweep import CDF_FRACTIONS

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence


@dataclasses.dataclass(frozen=True)
class Stat:
    """One figure of one system over the rounds: the median and the spread (min, max)."""

    median: float
    low: float
    high: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Stat:
        """The median, smallest and largest of ``values`` (NaN for none)."""
        if not values:
            return cls(float("nan"), float("nan"), float("nan"))
        return cls(median(values), min(values), max(values))


@dataclasses.dataclass(frozen=True)
class Target:
    """A figure's goal: ``ratio`` to the peer, or the zmqactors ``value`` itself, against a bound.

    ``at_least`` says which side of the bound is good.
    """

    of: Literal["ratio", "value"]
    bound: float
    at_least: bool

    def met(self, ratio: float, value: float) -> bool:
        """Whether ``ratio`` (or ``value``) is on the good side of the bound."""
        measured = ratio if self.of == "ratio" else value
        return measured >= self.bound if self.at_least else measured <= self.bound

    def __str__(self) -> str:
        sign = ">=" if self.at_least else "<="
        return f"{sign} {self.bound:g}x" if self.of == "ratio" else f"{sign} {self.bound:g}"


@dataclasses.dataclass(frozen=True)
class Figure:
    """One row of the report: each system's figure over the rounds, zmqactors against its peer."""

    key: str
    label: str
    unit: str
    values: dict[str, Stat]
    peer: str
    baseline: str
    target: Target | None = None

    @property
    def ratio(self) -> float:
        """The zmqactors median divided by the peer's (NaN without one)."""
        za_value, peer = self.values.get("za"), self.values.get(self.peer)
        if za_value is None or peer is None or not peer.median:
            return float("nan")
        return za_value.median / peer.median

    @property
    def met(self) -> bool | None:
        """Whether zmqactors reaches the target (None when there is no target)."""
        if self.target is None:
            return None
        return self.target.met(self.ratio, self.values["za"].median)


def _at_least(bound: float) -> Target:
    return Target("ratio", bound, at_least=True)


_ECHO1: Final = "echo, 1 caller"
_ECHO_THREADS: Final = f"echo, {CALLER_THREADS} callers"
_ECHO100: Final = f"echo, {PIPELINE_DEPTH} outstanding"
_FANOUT_BASELINE: Final = f"{FANOUT_SERVERS} PUSH->PULL, 1 per server"
# The sweep points the table takes its figures from (both are in SWEEP_THREADS).
_T1, _TN = "t1", f"t{CALLER_THREADS}"


def _each(suffix: str) -> dict[str, str]:
    """Every system's samples of one sweep figure: ``{system: "<system>_<suffix>"}``."""
    return {system: f"{system}_{suffix}" for system in SYSTEMS}


# The figures measured per round: key, label, unit, each system's sample key,
# the peer zmqactors is compared with, the peer's measure, the target.
# Kept as a table, one figure per two or three lines, by hand.
# fmt: off
_MEASURED: Final[tuple[tuple[str, str, str, dict[str, str], str, str, Target | None], ...]] = (
    ("sync_calls_per_s", "sync calls/s, 1 caller", "1/s", _each(f"{_T1}_rate"), "pyro",
     _ECHO1, _at_least(0.8)),
    ("threaded_calls_per_s", f"sync calls/s, {CALLER_THREADS} callers", "1/s",
     _each(f"{_TN}_rate"), "pyro", _ECHO_THREADS, _at_least(2.5)),
    ("async_calls_per_s", f"call_async/s, {PIPELINE_DEPTH} outstanding", "1/s",
     {"za": "za_async_rate", "raw": "raw_pipelined_rate"}, "raw", _ECHO100, _at_least(0.35)),
    ("client_cpu_us_per_call", f"client CPU us/call, {PIPELINE_DEPTH} out", "us",
     {"za": "za_async_client_cpu_us", "raw": "raw_pipelined_client_cpu_us"}, "raw", _ECHO100,
     Target("value", 25.0, at_least=False)),
    ("server_cpu_us_per_call", f"server CPU us/call, {PIPELINE_DEPTH} out", "us",
     {"za": "za_async_server_cpu_us", "raw": "raw_pipelined_server_cpu_us"}, "raw", _ECHO100,
     Target("value", 30.0, at_least=False)),
    ("threaded_p99_us", f"p99 latency us, {CALLER_THREADS} callers", "us",
     _each(f"{_TN}_p99_us"), "pyro", _ECHO_THREADS, Target("ratio", 1.0, at_least=False)),
    ("threaded_p50_us", f"p50 latency us, {CALLER_THREADS} callers", "us",
     _each(f"{_TN}_p50_us"), "pyro", _ECHO_THREADS, None),
    ("call_p50_us", "p50 latency us, 1 caller", "us", _each(f"{_T1}_p50_us"), "pyro", _ECHO1,
     None),
    ("call_p99_us", "p99 latency us, 1 caller", "us", _each(f"{_T1}_p99_us"), "pyro", _ECHO1,
     None),
    ("curve_sync_calls_per_s", "sync calls/s, 1 caller, CURVE", "1/s",
     {"za": "za_curve_sync_rate", "raw": "raw_curve_sync_rate"}, "raw", f"CURVE {_ECHO1}",
     _at_least(0.5)),
    ("curve_async_calls_per_s", f"call_async/s, {PIPELINE_DEPTH} out, CURVE", "1/s",
     {"za": "za_curve_async_rate", "raw": "raw_curve_pipelined_rate"}, "raw",
     f"CURVE {_ECHO100}", _at_least(0.8)),
    ("casts_per_s", "casts/s delivered", "1/s", {"za": "za_cast_rate", "raw": "raw_push_rate"},
     "raw", "PUSH->PULL", None),
    ("fanout_per_s", f"fanouts/s, all {FANOUT_SERVERS} servers got", "1/s",
     {"za": "za_fanout_rate", "raw": "raw_fanout_rate"}, "raw", _FANOUT_BASELINE, None),
    ("fanout_messages_per_s", f"fanout msgs/s, {FANOUT_SERVERS} servers total", "1/s",
     {"za": "za_fanout_total_rate", "raw": "raw_fanout_total_rate"}, "raw", _FANOUT_BASELINE,
     None),
    ("notifications_per_s", "notifications/s, 1 listener", "1/s",
     {"za": "za_notify_one_rate", "raw": "raw_push_rate"}, "raw", "PUSH->PULL", None),
    ("pool_notifications_per_s", f"notifications/s, pool of {POOL_LISTENERS}", "1/s",
     {"za": "za_notify_pool_rate", "raw": "raw_pool_rate"}, "raw",
     f"PUSH->{POOL_LISTENERS} PULL", None),
)
# fmt: on
# The peak RSS figures (one value per process, at its end): key, label, the
# process, the systems that have one.
_MEMORY: Final = (
    ("client_peak_rss_mib", "client peak RSS (MiB)", "client", SYSTEMS),
    ("server_peak_rss_mib", "server peak RSS (MiB)", "server", SYSTEMS),
    ("sink_peak_rss_mib", "sink peak RSS (MiB)", "sink", ("raw", "za")),
)


@dataclasses.dataclass
class Results:
    """What a run collected: per-round figures and CDFs, and what the processes said at the end.

    ``samples`` maps a figure's key (``<system>_...``) to its value in each
    round; ``cdfs`` a sweep point (``<system>_t<threads>``) to its latency
    quantiles (µs, at `CDF_FRACTIONS`) in each round; ``rss`` a system and a
    process (``client``, ``server``, ``sink``) to its peak RSS in MiB;
    ``transport_stats`` the zmqactors processes' transport counters.
    """

    samples: dict[str, list[float]] = dataclasses.field(default_factory=dict)
    cdfs: dict[str, list[list[float]]] = dataclasses.field(default_factory=dict)
    rss: dict[str, dict[str, float]] = dataclasses.field(default_factory=dict)
    transport_stats: dict[str, dict[str, int]] = dataclasses.field(default_factory=dict)

    def add_round(self, answer: Mapping[str, Any]) -> None:
        """Add one client's ``("round", answer)``: its figures and CDFs."""
        for key, value in answer["figures"].items():
            self.samples.setdefault(key, []).append(float(value))
        for key, cdf in answer["cdfs"].items():
            self.cdfs.setdefault(key, []).append([float(v) for v in cdf])

    def cdf(self, system: str, threads: int) -> list[float]:
        """The latency quantiles of a sweep point, each the median over the rounds."""
        rounds = self.cdfs.get(f"{system}_t{threads}", [])
        return [median(column) for column in zip(*rounds, strict=True)] if rounds else []


def build_figures(results: Results) -> list[Figure]:
    """The report's rows: each system's medians and spreads over the rounds."""
    figures = [
        Figure(
            key,
            label,
            unit,
            {system: Stat.of(results.samples.get(sample, [])) for system, sample in keys.items()},
            peer,
            baseline,
            target,
        )
        for key, label, unit, keys, peer, baseline, target in _MEASURED
    ]
    for key, label, process, systems in _MEMORY:
        values = {
            system: Stat.of([results.rss[system][process]])
            for system in systems
            if process in results.rss.get(system, {})
        }
        figures.append(Figure(key, label, "MiB", values, "raw", f"raw {process}"))
    return figures


def sweep_table(results: Results) -> dict[str, dict[str, dict[str, Stat]]]:
    """The concurrency sweep: ``{system: {threads: {"rate"|"p50_us"|"p99_us": Stat}}}``."""
    return {
        system: {
            str(threads): {
                name: Stat.of(results.samples.get(f"{system}_t{threads}_{name}", []))
                for name in ("rate", "p50_us", "p99_us")
            }
            for threads in SWEEP_THREADS
        }
        for system in SYSTEMS
    }


def environment() -> dict[str, Any]:
    """Versions and machine facts printed with the figures."""
    import Pyro5  # noqa: PLC0415 - only its version, here

    return {
        "python": platform.python_version(),
        "pyzmq": zmq.__version__,
        "libzmq": zmq.zmq_version(),
        "pyro5": str(Pyro5.__version__),
        "zmqactors": za.__version__,
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
    }


def number(value: float, unit: str = "") -> str:
    """``value`` short enough for a table: ``12.3k``, ``1,234``, ``42.0``; ``-`` for NaN."""
    if math.isnan(value):
        return "-"
    if unit != "MiB" and abs(value) >= 100_000:
        return f"{value / 1000:,.0f}k"
    if unit != "MiB" and abs(value) >= 10_000:
        return f"{value / 1000:.1f}k"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.1f}"


def spread(stat: Stat | None, unit: str = "") -> str:
    """``median [min..max]``, or the median alone for a single value; ``-`` when absent."""
    if stat is None or math.isnan(stat.median):
        return "-"
    if stat.low == stat.high:
        return number(stat.median, unit)
    return f"{number(stat.median, unit)} [{number(stat.low, unit)}..{number(stat.high, unit)}]"


_CELL: Final = 22


def format_figures(figures: Sequence[Figure]) -> str:
    """The figures as an aligned text table: each system's median [min..max], ratio, target."""
    header = (
        f"{'figure':<33}"
        + "".join(f"{SYSTEM_NAMES[system]:>{_CELL}}" for system in ("za", "pyro", "raw"))
        + f"{'ratio':>8} {'vs':<10}{'target':>9}{'met':>8}"
    )
    lines = [header, "-" * len(header)]
    for fig in figures:
        target = "-" if fig.target is None else str(fig.target)
        met = "" if fig.met is None else ("met" if fig.met else "MISSED")
        cells = "".join(
            f"{spread(fig.values.get(system), fig.unit):>{_CELL}}"
            for system in ("za", "pyro", "raw")
        )
        ratio = f"{'-':>8}" if math.isnan(fig.ratio) else f"{fig.ratio:>7.2f}x"
        lines.append(
            f"{fig.label:<33}{cells}{ratio} {SYSTEM_NAMES[fig.peer]:<10}{target:>9}{met:>8}"
        )
    return "\n".join(lines)


def format_sweep(table: Mapping[str, Mapping[str, Mapping[str, Stat]]]) -> str:
    """The concurrency sweep as text: per thread count and system, calls/s and p50/p99 in µs."""
    header = (
        f"{'threads':>7}  {'system':<10}{'calls/s':>{_CELL}}{'p50 us':>{_CELL}}{'p99 us':>{_CELL}}"
    )
    lines = [header, "-" * len(header)]
    for threads in SWEEP_THREADS:
        for system in SYSTEMS:
            point = table[system][str(threads)]
            cells = (f"{spread(point[name]):>{_CELL}}" for name in ("rate", "p50_us", "p99_us"))
            lines.append(f"{threads:>7}  {SYSTEM_NAMES[system]:<10}" + "".join(cells))
    return "\n".join(lines)


_LOSSES: Final = {
    "casts": "za_cast_lost",
    "fanout messages": "za_fanout_lost",
    "notifications (1 listener)": "za_notify_one_lost",
    f"notifications (pool of {POOL_LISTENERS})": "za_notify_pool_lost",
}


def losses(results: Results) -> dict[str, float]:
    """Messages sent but not delivered, over every measured round, by kind."""
    return {kind: sum(results.samples.get(key, [])) for kind, key in _LOSSES.items()}


def drop_counters(results: Results) -> dict[str, dict[str, int]]:
    """The zmqactors processes' nonzero transport counters, by process."""
    return {process: dict(counts) for process, counts in results.transport_stats.items() if counts}


def _stat_json(stat: Stat) -> dict[str, float]:
    return {"median": stat.median, "min": stat.low, "max": stat.high}


def build_document(results: Results, config: BenchConfig, wall_s: float) -> dict[str, Any]:
    """The figures, the sweep, the CDFs, every sample and the settings, for JSON and the plot."""
    figures = build_figures(results)
    return {
        "figures": {
            fig.key: {
                "label": fig.label,
                "unit": fig.unit,
                **{SYSTEM_NAMES[system]: _stat_json(stat) for system, stat in fig.values.items()},
                "peer": SYSTEM_NAMES[fig.peer],
                "ratio": fig.ratio,
                "baseline": fig.baseline,
                "target": None if fig.target is None else str(fig.target),
                "met": fig.met,
            }
            for fig in figures
        },
        "sweep": {
            SYSTEM_NAMES[system]: {
                threads: {name: _stat_json(stat) for name, stat in point.items()}
                for threads, point in points.items()
            }
            for system, points in sweep_table(results).items()
        },
        "cdf": {
            "fractions": list(CDF_FRACTIONS),
            "latency_us": {
                SYSTEM_NAMES[system]: {
                    str(threads): results.cdf(system, threads) for threads in SWEEP_THREADS
                }
                for system in SYSTEMS
            },
        },
        "samples": results.samples,
        "curve_cost": {**curve_costs(results.samples), "target": CURVE_COST_TARGET},
        "lost": losses(results),
        "transport_stats": results.transport_stats,
        "config": {
            "duration": config.duration,
            "warmup": config.warmup,
            "rounds": config.repeat,
            "host": config.host,
            "payload_bytes": PAYLOAD_SIZE,
            "pipeline_depth": PIPELINE_DEPTH,
            "caller_threads": CALLER_THREADS,
            "sweep_threads": list(SWEEP_THREADS),
            "cast_batch": CAST_BATCH,
            "fanout_batch": FANOUT_BATCH,
            "fanout_servers": FANOUT_SERVERS,
            "pool_listeners": POOL_LISTENERS,
        },
        "environment": environment(),
        "wall_s": wall_s,
    }


def format_text(results: Results, config: BenchConfig) -> str:
    """The report as text: the environment, both tables, CURVE costs, losses, counters."""
    env = environment()
    counters = drop_counters(results)
    return "\n".join(
        [
            (
                f"zmqactors {env['zmqactors']} / Pyro5 {env['pyro5']} / Python {env['python']} / "
                f"pyzmq {env['pyzmq']} (libzmq {env['libzmq']}) / {env['cpus']} CPUs; "
                f"{PAYLOAD_SIZE} B arguments, TCP loopback {config.host}; median [min..max] of "
                f"{config.repeat} interleaved round(s) x {config.duration:g} s"
            ),
            "",
            format_figures(build_figures(results)),
            "",
            (
                "Concurrency sweep (sync calls; raw: a DEALER per thread, Pyro5: a proxy per "
                "thread, zmqactors: one shared RPCClient):"
            ),
            format_sweep(sweep_table(results)),
            "",
            format_curve_costs(curve_costs(results.samples)),
            "sent - delivered, all rounds: "
            + ", ".join(f"{kind} {count:,.0f}" for kind, count in losses(results).items()),
            "zmqactors transport counters: "
            + (
                "; ".join(
                    f"{process} "
                    + ", ".join(f"{name}={value}" for name, value in sorted(counts.items()))
                    for process, counts in counters.items()
                )
                or "none"
            ),
        ]
    )
