"""``make bench``'s plot: the latency CDFs at 1 and 16 callers, and calls/s against callers."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Final

from benchmarks.common import CALLER_THREADS

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

# A colour per system, the same in both panels; a line style per caller count.
_COLOURS: Final = {"raw pyzmq": "tab:gray", "Pyro5": "tab:orange", "zmqactors": "tab:blue"}
_STYLES: Final = {1: "-", CALLER_THREADS: "--"}


def plot(document: Mapping[str, Any], path: Path) -> None:
    """Draw the run's ``document`` (`benchmarks.report.build_document`) into the PNG ``path``.

    Left: the latency CDF of sync calls at 1 and `CALLER_THREADS` callers, per
    system (each quantile the median over the rounds). Right: calls/s against
    caller threads, per system (median, and the rounds' min..max as a band).
    Raises ``ImportError`` without matplotlib (the ``bench`` extra).
    """
    import matplotlib as mpl  # noqa: PLC0415 - optional (the bench extra), only for --plot

    mpl.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415 - after choosing the file-only backend
    from matplotlib.ticker import FuncFormatter  # noqa: PLC0415 - with matplotlib

    plain = FuncFormatter(lambda value, _: f"{value:g}")
    figure, (cdf_ax, rate_ax) = plt.subplots(1, 2, figsize=(14, 5.5), layout="constrained")
    fractions = document["cdf"]["fractions"]
    for system, colour in _COLOURS.items():
        for threads, style in _STYLES.items():
            latencies = document["cdf"]["latency_us"][system][str(threads)]
            if latencies:
                cdf_ax.plot(
                    latencies,
                    fractions,
                    color=colour,
                    linestyle=style,
                    label=f"{system}, {threads} caller{'s' if threads > 1 else ''}",
                )
    cdf_ax.set_xscale("log")
    cdf_ax.xaxis.set_major_formatter(plain)
    cdf_ax.set_xlabel("sync call latency (us, log)")
    cdf_ax.set_ylabel("fraction of calls")
    cdf_ax.set_ylim(0, 1)
    cdf_ax.grid(visible=True, which="both", alpha=0.3)
    cdf_ax.set_title(f"latency CDF, 1 and {CALLER_THREADS} caller threads")
    cdf_ax.legend(fontsize="small", loc="lower right")
    for system, colour in _COLOURS.items():
        points = sorted(
            (int(threads), point["rate"])
            for threads, point in document["sweep"][system].items()
            if point["rate"]["median"] is not None and not math.isnan(point["rate"]["median"])
        )
        if points:
            counts = [count for count, _ in points]
            rate_ax.plot(
                counts,
                [rate["median"] for _, rate in points],
                color=colour,
                marker="o",
                label=system,
            )
            rate_ax.fill_between(
                counts,
                [rate["min"] for _, rate in points],
                [rate["max"] for _, rate in points],
                color=colour,
                alpha=0.2,
            )
    rate_ax.set_xscale("log")
    rate_ax.xaxis.set_major_formatter(plain)
    rate_ax.set_xticks([int(count) for count in document["config"]["sweep_threads"]])
    rate_ax.set_xlabel("caller threads (log)")
    rate_ax.set_ylabel("sync calls/s, all threads")
    rate_ax.set_ylim(bottom=0)
    rate_ax.grid(visible=True, alpha=0.3)
    rate_ax.set_title("throughput against caller threads (band: min..max of the rounds)")
    rate_ax.legend(fontsize="small")
    config, env = document["config"], document["environment"]
    figure.suptitle(
        f"{config['payload_bytes']} B echo over TCP loopback, each server in its own process; "
        f"median of {config['rounds']} interleaved round(s) x {config['duration']:g} s; "
        f"{env['cpus']} CPUs"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)
