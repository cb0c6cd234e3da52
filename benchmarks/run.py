"""The runner: parse the command line, run each side's processes, print the report."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import shutil
import sys
import tempfile
from typing import TYPE_CHECKING, Any, Final, Literal

from benchmarks.client import za_client_main
from benchmarks.common import (
    DEFAULT_HOST,
    FANOUT_SERVERS,
    START_TIMEOUT,
    STOP_TIMEOUT,
    BenchConfig,
    BenchError,
    configure_logging,
)
from benchmarks.curve import write_keys
from benchmarks.processes import Children, expect
from benchmarks.progress import Progress
from benchmarks.raw import raw_client_main, raw_server_main
from benchmarks.report import build_figures, losses, print_text, report_json
from benchmarks.servers import za_server_main, za_sink_main
from zmqactors._addresses import check_host

if TYPE_CHECKING:
    from collections.abc import Sequence
    from multiprocessing.connection import Connection
    from multiprocessing.context import SpawnProcess


# Figures measured per repeat by each side's client (for its time budget).
_RAW_PHASES: Final = 7
_ZA_PHASES: Final = 9


def _run_side(side: Literal["raw", "zmqactors"], config: BenchConfig, url: str) -> dict[str, Any]:
    """Start one side's server, sink and client processes, run the client, stop the others.

    Returns the client's results with the peak RSS of the server
    (``server_rss_mib``) and of the largest sink (``sink_rss_mib``). Raises
    `BenchError`.
    """
    phases = _RAW_PHASES if side == "raw" else _ZA_PHASES
    limit = config.budget(phases) + START_TIMEOUT
    children = Children()
    try:
        servers: list[tuple[SpawnProcess, Connection]] = []
        if side == "raw":
            servers.append(
                children.start("raw-server", raw_server_main, limit, config.host, config.curve)
            )
            servers.extend(
                children.start(f"raw-sink-{i}", raw_server_main, limit, config.host)
                for i in range(FANOUT_SERVERS)
            )
        else:
            servers.append(
                children.start(
                    "zmqactors-server",
                    za_server_main,
                    url,
                    limit,
                    config.curve_url(url, "server"),
                )
            )
            servers.extend(
                children.start(f"zmqactors-sink-{i}", za_sink_main, url, i, limit)
                for i in range(FANOUT_SERVERS)
            )
        ready = [expect(conn, process, "ready", START_TIMEOUT) for process, conn in servers]
        if side == "raw":
            addresses = dict(ready[0])
            for i, sink in enumerate(ready[1:]):
                addresses[f"sink{i}_echo"] = sink["echo"]
                addresses[f"sink{i}_push"] = sink["push"]
            client_config = dataclasses.replace(config, addresses=addresses)
            client, client_conn = children.start("raw-client", raw_client_main, client_config)
        else:
            client, client_conn = children.start("zmqactors-client", za_client_main, config, url)
        result: dict[str, Any] = expect(client_conn, client, "result", config.budget(phases))
        for _, conn in servers:
            with contextlib.suppress(OSError):
                conn.send("stop")
        final = [expect(conn, process, "result", STOP_TIMEOUT) for process, conn in servers]
        result["server_rss_mib"] = max(
            float(final[0]["rss_mib"]), float(result.get("server_rss_mib", 0.0))
        )
        result["sink_rss_mib"] = max(float(sink["rss_mib"]) for sink in final[1:])
        return result
    finally:
        children.close()


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line: durations, repeats, output format."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Measure zmqactors RPC against raw pyzmq on TCP loopback, "
        "server and client in separate processes.",
    )
    parser.add_argument(
        "--duration", type=float, default=3.0, help="seconds per measurement (default 3)"
    )
    parser.add_argument(
        "--warmup", type=float, default=None, help="seconds of warm-up before each (default 0.5)"
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=None,
        help="repeats; the median is reported (default 3, 1 with --quick)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="0.5 s per measurement, 0.1 s warm-up, 1 repeat unless given (smoke test)",
    )
    parser.add_argument(
        "--host",
        default=DEFAULT_HOST,
        help="the loopback address servers bind, 127.0.0.1 (default) or ::1 for IPv6",
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    try:
        args.host = check_host("--host", args.host, wildcard=False)
    except ValueError as exc:
        parser.error(str(exc))
    if args.quick:
        args.duration = 0.5
        args.warmup = 0.1 if args.warmup is None else args.warmup
        args.repeat = 1 if args.repeat is None else args.repeat
    if args.warmup is None:
        args.warmup = 0.5
    if args.repeat is None:
        args.repeat = 3
    if not 0 < args.duration <= 600 or not 0 <= args.warmup <= 60:
        parser.error("--duration must be in (0, 600] and --warmup in [0, 60] seconds")
    if not 1 <= args.repeat <= 100:
        parser.error("--repeat must be from 1 to 100")
    return args


def _planned(config: BenchConfig, phases: int) -> float:
    """How long a side should take: its measurements, and a few seconds to start its processes."""
    return 3.0 + config.repeat * phases * (config.duration + config.warmup)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print its report; 0 on success, 1 if a process failed."""
    args = _parse_args(argv)
    configure_logging()
    config = BenchConfig(
        duration=args.duration, warmup=args.warmup, repeat=args.repeat, host=args.host
    )
    directory = tempfile.mkdtemp(prefix="zmqactors-bench-")
    url = f"zmq+file://{directory}/matchmaker?bind_address={config.host}"
    raw_time, za_time = (_planned(config, phases) for phases in (_RAW_PHASES, _ZA_PHASES))
    try:
        config = dataclasses.replace(config, curve=write_keys(directory))
        with Progress(raw_time + za_time) as progress:
            progress.stage("measuring raw pyzmq", raw_time)
            raw = _run_side("raw", config, url)
            progress.stage("measuring zmqactors", za_time)
            zmq_side = _run_side("zmqactors", config, url)
    except BenchError as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    figures = build_figures(raw, zmq_side)
    lost = losses(zmq_side)
    if any(lost.values()):
        print(
            "warning: sent but not delivered: "
            + ", ".join(f"{count:,.0f} {kind}" for kind, count in lost.items() if count),
            file=sys.stderr,
        )
    if args.json:
        print(report_json(figures, raw, zmq_side, config))
        return 0
    print_text(figures, raw, zmq_side, config)
    return 0


if __name__ == "__main__":
    sys.exit(main())
