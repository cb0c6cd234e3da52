"""The scale benchmark's report: a table per N, the growth of each figure, JSON and a plot."""

from __future__ import annotations

import dataclasses
import json
import math
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from pathlib import Path


@dataclasses.dataclass(frozen=True)
class Column:
    """One figure of the report: its key in a run's figures, its label and format."""

    key: str
    label: str
    fmt: str = "{:,.0f}"


# The figures, in table order; two tables, or the lines get too long.
CALL_COLUMNS: Final = (
    Column("start_s", "start s", "{:,.1f}"),
    Column("fanout_ms", "fanout ms", "{:,.1f}"),
    Column("spread_calls_per_s", "spread calls/s"),
    Column("spread_cpu_us", "CPU us/call"),
    Column("direct_p50_us", "direct p50 us"),
    Column("direct_p99_us", "direct p99 us"),
    Column("direct_cpu_us", "direct CPU us"),
    Column("lookup_ms", "lookup ms", "{:,.2f}"),
    Column("first_call_ms", "1st call ms", "{:,.1f}"),
    Column("matchmaker_per_s", "mm cmds/s", "{:,.1f}"),
)
RESOURCE_COLUMNS: Final = (
    Column("servers_per_process", "servers/proc"),
    Column("client_rss_mib", "client MiB", "{:,.1f}"),
    Column("client_threads", "client thr"),
    Column("client_fds", "client fds"),
    Column("server_rss_mib", "server MiB", "{:,.1f}"),
    Column("server_threads", "server thr"),
    Column("server_fds", "server fds"),
    Column("server_threads_per_server", "thr/server", "{:,.1f}"),
    Column("server_fds_per_server", "fds/server", "{:,.1f}"),
)
COLUMNS: Final = CALL_COLUMNS + RESOURCE_COLUMNS
# Columns that a run's settings decide rather than measure: no growth for them.
SETTINGS: Final = frozenset({"servers_per_process"})


def fmt_value(column: Column, value: float | None) -> str:
    """``value`` as ``column`` shows it; ``-`` when it was not measured."""
    if value is None or not math.isfinite(value):
        return "-"
    return column.fmt.format(value)


def format_table(
    runs: Sequence[Mapping[str, Any]], columns: Sequence[Column], *, notes: bool = True
) -> str:
    """One row per run (its N, then ``columns``), aligned; then (``notes``) what went wrong."""
    header = ["N", *(column.label for column in columns)]
    rows = [header]
    lines_after = []
    for run in runs:
        figures = run.get("figures", {})
        rows.append([f"{run['servers']:,}", *(fmt_value(c, figures.get(c.key)) for c in columns)])
        if run.get("fanout_incomplete"):
            lines_after.append(
                f"  N={run['servers']:,}: {run['fanout_incomplete']} fanout cast(s) did not "
                f"reach every server in time (the fewest reached "
                f"{run.get('fanout_fewest_reached', float('nan')):,.0f}); left out of the median"
            )
        if run.get("lookup_error"):
            lines_after.append(f"  N={run['servers']:,}: no lookup figure: {run['lookup_error']}")
        if run.get("error"):
            lines_after.append(
                f"  N={run['servers']:,} FAILED ({run['failed_in']}): {run['error']}"
            )
            then = run.get("at_failure")
            if then:
                lines_after.append(
                    f"    {then['process']} then: {then['fds']:,.0f} fds, "
                    f"{then['threads']:,.0f} threads, {then['rss_mib']:,.1f} MiB"
                )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = [
        "  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True))
        for row in rows
    ]
    return "\n".join([*lines, *(lines_after if notes else [])])


def slope_label(slope: float) -> str:
    """Name the growth of a log-log ``slope``: O(1), O(N), O(1/N), else O(N^slope)."""
    for target, label in ((0.0, "O(1)"), (1.0, "O(N)"), (-1.0, "O(1/N)"), (2.0, "O(N^2)")):
        if abs(slope - target) < 0.2:
            return label
    return f"O(N^{slope:.2f})"


def log_slope(points: Sequence[tuple[float, float]]) -> float:
    """The least-squares slope of log(value) against log(N) over ``points`` (NaN if < 2)."""
    usable = [(math.log(n), math.log(v)) for n, v in points if n > 0 and v > 0]
    if len(usable) < 2:
        return float("nan")
    mean_x = sum(x for x, _ in usable) / len(usable)
    mean_y = sum(y for _, y in usable) / len(usable)
    spread = sum((x - mean_x) ** 2 for x, _ in usable)
    if spread == 0:
        return float("nan")
    return sum((x - mean_x) * (y - mean_y) for x, y in usable) / spread


def growth(runs: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each figure's growth over the Ns that measured it: ratios to the smallest N, slope, label.

    A figure needs two Ns with positive values to get a slope; ratios are
    to the figure's value at the smallest N that measured it.
    """
    result: dict[str, dict[str, Any]] = {}
    for column in COLUMNS:
        if column.key in SETTINGS:
            continue
        points = [
            (float(run["servers"]), float(run["figures"][column.key]))
            for run in runs
            if _finite(run.get("figures", {}).get(column.key))
        ]
        if not points:
            continue
        base_n, base = points[0]
        slope = log_slope(points)
        result[column.key] = {
            "label": column.label,
            "base_n": base_n,
            "ratios": {f"{n:.0f}": (value / base if base else float("nan")) for n, value in points},
            "slope": slope,
            "growth": slope_label(slope) if math.isfinite(slope) else "-",
        }
    return result


def format_growth(table: Mapping[str, Mapping[str, Any]]) -> str:
    """The growth table: per figure, its ratio at each N to the smallest N, slope, label."""
    lines = []
    for entry in table.values():
        ratios = ", ".join(
            f"N={float(n):,.0f}: {ratio:.2f}x" for n, ratio in entry["ratios"].items()
        )
        slope = entry["slope"]
        shown = f"slope {slope:+.2f}" if math.isfinite(slope) else "one N only"
        lines.append(f"  {entry['label']:<14} {entry['growth']:<10} {shown:<12} {ratios}")
    return "\n".join(lines)


def format_report(document: Mapping[str, Any]) -> str:
    """The whole text report of a run (`build_document`'s document)."""
    config = document["config"]
    runs = document["runs"]
    return "\n".join(
        [
            (
                f"zmqactors scale benchmark: {config['matchmaker']}, "
                f"up to {config['per_process']} servers per process, "
                f"executor_size {config['executor_size']}, {config['clients']} client process(es), "
                f"{config['threads']} caller threads each, {config['duration']} s per figure"
            ),
            "",
            (
                "calls, fanout and discovery (fanout: median time for one fanout cast to reach "
                "every server; CPU: client process CPU per call)"
            ),
            format_table(runs, CALL_COLUMNS),
            "",
            "resources (client: client 0; server: the largest of the server processes)",
            format_table(runs, RESOURCE_COLUMNS, notes=False),
            "",
            f"growth (ratio to N={runs[0]['servers'] if runs else '-'}, log-log slope)",
            format_growth(document["growth"]),
            "",
            f"matchmaker commands/s: {document['matchmaker_note']}",
            f"wall time: {document['wall_s']:,.0f} s",
        ]
    )


def build_document(
    config: Mapping[str, Any], runs: Sequence[Mapping[str, Any]], note: str, wall_s: float
) -> dict[str, Any]:
    """The JSON document: the configuration, every run, the growth table."""
    return {
        "config": dict(config),
        "runs": list(runs),
        "growth": growth(runs),
        "matchmaker_note": note,
        "wall_s": wall_s,
    }


def write_json(document: Mapping[str, Any], path: Path) -> None:
    """Write ``document`` to ``path`` (NaN as null), creating its directory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_no_nan(document), indent=2, sort_keys=True) + "\n")


def _no_nan(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _no_nan(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_no_nan(item) for item in value]
    return value


def _finite(value: object) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


# The plot's panels: title, y label, the figures drawn in it.
_PANELS: Final = (
    ("one fanout cast reaches all", "ms", ("fanout_ms",)),
    ("calls spread over the topic", "calls/s", ("spread_calls_per_s",)),
    ("client CPU per call", "us", ("spread_cpu_us", "direct_cpu_us")),
    ("direct call latency", "us", ("direct_p50_us", "direct_p99_us")),
    ("client process", "count / MiB", ("client_rss_mib", "client_threads", "client_fds")),
    (
        "server process (largest)",
        "count / MiB",
        ("server_rss_mib", "server_threads", "server_fds"),
    ),
    ("discovery", "ms", ("lookup_ms", "first_call_ms")),
    ("matchmaker commands", "1/s", ("matchmaker_per_s",)),
)


def plot(document: Mapping[str, Any], path: Path) -> None:
    """Draw every figure against N (log-log), one panel per kind, into the PNG ``path``.

    Raises ``ImportError`` without matplotlib (the ``bench`` extra).
    """
    import matplotlib as mpl  # noqa: PLC0415 - optional (the bench extra), only for --plot

    mpl.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415 - after choosing the file-only backend
    from matplotlib.ticker import FuncFormatter  # noqa: PLC0415 - with matplotlib

    plain = FuncFormatter(lambda value, _: f"{value:g}")

    labels = {column.key: column.label for column in COLUMNS}
    runs = document["runs"]
    figure, axes = plt.subplots(2, 4, figsize=(18, 8), layout="constrained")
    for ax, (title, unit, keys) in zip(axes.flat, _PANELS, strict=True):
        for key in keys:
            points = [
                (run["servers"], run["figures"][key])
                for run in runs
                if _finite(run.get("figures", {}).get(key))
            ]
            if points:
                ax.plot(*zip(*points, strict=True), marker="o", label=labels[key])
        failed = [run["servers"] for run in runs if run.get("error")]
        for n in failed:
            ax.axvline(n, color="red", linestyle=":", linewidth=1)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.xaxis.set_major_formatter(plain)
        ax.yaxis.set_major_formatter(plain)
        ax.yaxis.set_minor_formatter(plain)
        ax.set_title(title)
        ax.set_xlabel("servers on the topic (N)")
        ax.set_ylabel(unit)
        if ax.has_data():
            ax.legend(fontsize="small")
    config = document["config"]
    figure.suptitle(
        f"zmqactors scale: {config['matchmaker']}, <= {config['per_process']} servers/process "
        "(red: an N that failed)"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)
