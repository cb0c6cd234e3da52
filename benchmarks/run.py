"""The runner: parse the command line, start every system's processes, run interleaved rounds.

Every server and sink of the three systems starts first and serves for the
whole run; then a client process per system. Each round asks raw pyzmq's
client, then Pyro5's, then zmqactors' for one pass over their figures, so a
burst of load from elsewhere on the machine touches every system alike.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from benchmarks.client import za_client_main
from benchmarks.common import (
    DEFAULT_HOST,
    FANOUT_SERVERS,
    START_TIMEOUT,
    STOP_TIMEOUT,
    SWEEP_THREADS,
    SYSTEM_NAMES,
    SYSTEMS,
    BenchConfig,
    BenchError,
    configure_logging,
)
from benchmarks.curve import write_keys
from benchmarks.plot import plot
from benchmarks.processes import Children, expect
from benchmarks.progress import Progress
from benchmarks.pyro import pyro_client_main, pyro_server_main
from benchmarks.raw import raw_client_main, raw_server_main
from benchmarks.report import Results, build_document, format_text, losses
from benchmarks.scale_report import write_json
from benchmarks.servers import za_server_main, za_sink_main
from zmqactors._addresses import check_host

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from multiprocessing.connection import Connection
    from multiprocessing.context import SpawnProcess


# Measurements per round, each a warm-up and a duration: the sweep's points,
# then raw's 6 other figures (pipelined, CURVE x2, PUSH, fanout, pool) and
# zmqactors' 7 (call_async, CURVE x2, casts, fanout, notifications x2).
_PHASES: Final = {
    "raw": len(SWEEP_THREADS) + 6,
    "pyro": len(SWEEP_THREADS),
    "za": len(SWEEP_THREADS) + 7,
}
DEFAULT_JSON: Final = "build/bench.json"
DEFAULT_PLOT: Final = "build/bench.png"


@dataclasses.dataclass
class _Client:
    """A system's client process, our end of its pipe, and how long one round may take."""

    process: SpawnProcess
    conn: Connection
    budget: float


class _Bench:
    """Every process of a run: the three systems' servers and sinks, then their clients."""

    def __init__(self, config: BenchConfig, url: str, limit: float) -> None:
        self.config = config
        self.url = url
        self.limit = limit
        self.children = Children()
        self.servers: dict[str, list[tuple[SpawnProcess, Connection]]] = {}
        self.clients: dict[str, _Client] = {}
        self.results = Results()

    def start(self) -> None:
        """Start every server and sink, then the clients once those are ready.

        Raises `BenchError`.
        """
        config, start = self.config, self.children.start
        limit, host = self.limit, config.host
        self.servers["raw"] = [
            start("raw-server", raw_server_main, limit, host, config.curve),
            *(start(f"raw-sink-{i}", raw_server_main, limit, host) for i in range(FANOUT_SERVERS)),
        ]
        self.servers["pyro"] = [start("pyro-server", pyro_server_main, limit, host)]
        self.servers["za"] = [
            start(
                "zmqactors-server",
                za_server_main,
                self.url,
                limit,
                config.curve_url(self.url, "server"),
            ),
            *(
                start(f"zmqactors-sink-{i}", za_sink_main, self.url, i, limit)
                for i in range(FANOUT_SERVERS)
            ),
        ]
        ready = {
            system: [expect(conn, process, "ready", START_TIMEOUT) for process, conn in servers]
            for system, servers in self.servers.items()
        }
        addresses = dict(ready["raw"][0])
        for i, sink in enumerate(ready["raw"][1:]):
            addresses[f"sink{i}_echo"] = sink["echo"]
            addresses[f"sink{i}_push"] = sink["push"]
        raw_config = dataclasses.replace(config, addresses=addresses)
        targets: dict[str, tuple[Callable[..., None], tuple[object, ...]]] = {
            "raw": (raw_client_main, (raw_config, limit)),
            "pyro": (pyro_client_main, (config, ready["pyro"][0]["uri"], limit)),
            "za": (za_client_main, (config, self.url, int(ready["za"][0]["pid"]), limit)),
        }
        for system, (target, args) in targets.items():
            process, conn = start(f"{system}-client", target, *args)
            budget = config.budget(_PHASES[system]) - START_TIMEOUT
            self.clients[system] = _Client(process, conn, budget)
        for client in self.clients.values():
            expect(client.conn, client.process, "ready", START_TIMEOUT)

    def round(self, system: str) -> None:
        """One round of ``system``'s client; its figures go to `results`. Raises `BenchError`."""
        client = self.clients[system]
        try:
            client.conn.send("round")
        except OSError:
            raise BenchError(f"{client.process.name} is gone") from None
        self.results.add_round(expect(client.conn, client.process, "round", client.budget))

    def stop(self) -> None:
        """Stop the clients, then the servers; keep peak RSS and counters. Raises `BenchError`."""
        ended = {}
        for system, client in self.clients.items():
            with contextlib.suppress(OSError):
                client.conn.send("stop")
            ended[system] = expect(client.conn, client.process, "result", STOP_TIMEOUT)
        self.results.transport_stats = ended["za"].get("transport_stats", {})
        for system, servers in self.servers.items():
            for _, conn in servers:
                with contextlib.suppress(OSError):
                    conn.send("stop")
            final = [expect(conn, process, "result", STOP_TIMEOUT) for process, conn in servers]
            rss = {"client": float(ended[system]["rss_mib"]), "server": float(final[0]["rss_mib"])}
            if "server_rss_mib" in ended[system]:
                rss["server"] = max(rss["server"], float(ended[system]["server_rss_mib"]))
            if len(final) > 1:
                rss["sink"] = max(float(sink["rss_mib"]) for sink in final[1:])
            self.results.rss[system] = rss


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line: durations, rounds, where the JSON and the plot go."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Measure zmqactors RPC beside Pyro5 and raw pyzmq on TCP loopback, "
        "each server and client in its own process, in interleaved rounds.",
    )
    parser.add_argument(
        "--duration", type=float, default=2.0, help="seconds per measurement (default 2)"
    )
    parser.add_argument(
        "--warmup", type=float, default=None, help="seconds of warm-up before each (default 0.5)"
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=None,
        help="rounds; the median is reported (default 5, 1 with --quick)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="0.3 s per measurement, 0.1 s warm-up, 1 round unless given (smoke test)",
    )
    parser.add_argument(
        "--host",
        default=DEFAULT_HOST,
        help="the loopback address servers bind, 127.0.0.1 (default) or ::1 for IPv6",
    )
    parser.add_argument(
        "--json",
        nargs="?",
        const="-",
        default=DEFAULT_JSON,
        metavar="PATH",
        help=f"write the figures as JSON to PATH (default {DEFAULT_JSON}); "
        "--json alone or --json - prints them on stdout instead of the tables",
    )
    parser.add_argument(
        "--plot",
        default=DEFAULT_PLOT,
        metavar="PATH",
        help=f"draw the latency CDFs and the sweep into the PNG PATH (default {DEFAULT_PLOT}; "
        "- for none)",
    )
    args = parser.parse_args(argv)
    try:
        args.host = check_host("--host", args.host, wildcard=False)
    except ValueError as exc:
        parser.error(str(exc))
    if args.quick:
        args.duration = 0.3
        args.warmup = 0.1 if args.warmup is None else args.warmup
        args.repeat = 1 if args.repeat is None else args.repeat
    if args.warmup is None:
        args.warmup = 0.5
    if args.repeat is None:
        args.repeat = 5
    if not 0 < args.duration <= 600:
        parser.error(f"--duration must be in (0, 600] seconds, not {args.duration:g}")
    if not 0 <= args.warmup <= 60:
        parser.error(f"--warmup must be in [0, 60] seconds, not {args.warmup:g}")
    if not 1 <= args.repeat <= 100:
        parser.error(f"--repeat must be from 1 to 100, not {args.repeat}")
    for option, path in (("--json", args.json), ("--plot", args.plot)):
        if not path:
            parser.error(f"{option} needs a path (or -)")
    return args


def _planned(config: BenchConfig, phases: int) -> float:
    """How long one round of a system should take: its measurements, a second to settle."""
    return 1.0 + phases * (config.duration + config.warmup)


def _write(document: dict[str, Any], json_path: str, plot_path: str) -> None:
    """Write the JSON document and the plot where asked (``-``: JSON on stdout, no plot)."""
    if json_path == "-":
        print(json.dumps(document, indent=2))
    else:
        write_json(document, Path(json_path))
        print(f"JSON: {json_path}", file=sys.stderr)
    if plot_path != "-":
        try:
            plot(document, Path(plot_path))
        except ImportError:
            print("no plot: matplotlib is missing (pip install -e '.[bench]')", file=sys.stderr)
        else:
            print(f"plot: {plot_path}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark, print its report, write its JSON and plot; 1 if a process failed."""
    args = _parse_args(argv)
    configure_logging()
    config = BenchConfig(
        duration=args.duration, warmup=args.warmup, repeat=args.repeat, host=args.host
    )
    directory = tempfile.mkdtemp(prefix="zmqactors-bench-")
    url = f"zmq+file://{directory}/matchmaker?bind_address={config.host}"
    per_round = {system: _planned(config, phases) for system, phases in _PHASES.items()}
    planned = 10.0 + config.repeat * sum(per_round.values())
    limit = START_TIMEOUT + sum(config.budget(phases) for phases in _PHASES.values())
    started = time.monotonic()
    bench = _Bench(dataclasses.replace(config, curve=write_keys(directory)), url, limit)
    try:
        with Progress(planned) as progress:
            progress.stage("starting every system's servers and clients", 10.0)
            bench.start()
            for index in range(config.repeat):
                for system in SYSTEMS:
                    progress.stage(
                        f"round {index + 1}/{config.repeat}: {SYSTEM_NAMES[system]}",
                        per_round[system],
                    )
                    bench.round(system)
            bench.stop()
    except BenchError as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 1
    finally:
        bench.children.close()
        shutil.rmtree(directory, ignore_errors=True)
    results = bench.results
    lost = losses(results)
    if any(lost.values()):
        print(
            "warning: sent but not delivered: "
            + ", ".join(f"{count:,.0f} {kind}" for kind, count in lost.items() if count),
            file=sys.stderr,
        )
    document = build_document(results, config, time.monotonic() - started)
    if args.json != "-":
        print(format_text(results, config))
    _write(document, args.json, args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
