"""``make bench-scale`` (``python -m benchmarks.scale``): N servers on one topic, N = 10 .. 1,000.

For each N of ``--servers`` (default ``10,100,1000``) this program starts
``ceil(N / --per-process)`` server processes, each one transport hosting its
share of the N servers (`RPCServer`) of one topic (``--executor-size`` workers
each), and ``--clients`` client processes, all on one matchmaker (a file
matchmaker in a fresh temporary directory per N, or ``--matchmaker URL``
with a fresh topic per N). It then measures, one phase at a time:

- spread: sync calls to the topic (no server named) from ``--threads``
  threads in every client process at once for ``--duration`` s: calls/s
  (all clients) and the client process's CPU per call (``process_time``,
  every thread of the process; client 0);
- fanout: ``--fanouts`` fanout casts from client 0, one at a time (after a
  warm-up one); every server records when the cast reached it
  (CLOCK_MONOTONIC, one clock for the processes of a host); the figure is
  the median over the casts of (last arrival - send time);
- direct: sync calls to one named server for ``--duration`` s: p50/p99 and
  CPU per call;
- discovery: the topic's routes read from the matchmaker backend itself
  (what a lookup-cache miss costs; `zmqactors.matchmaker.matchmaker_for`,
  median of 20), and the first call from a fresh transport (actors, lookup,
  connect, call);
- resources: RSS, threads and open fds of client 0 and of each server
  process (``/proc/PID/status`` and ``/proc/PID/fd``), with every server up;
- matchmaker commands/s: with a Redis matchmaker (``--redis`` starts one)
  the ``INFO commandstats`` delta over the measured phases, made at least
  two refresh periods long (``2 * matchmaker_ttl / 3``, 60 s at most) by
  waiting; otherwise the transports' matchmaker counters if they have any
  (`benchmarks.scale_matchmaker.MATCHMAKER_COUNTERS`), else the rate
  implied by the options (each server refreshed every ``matchmaker_ttl /
  3``, each client's cache every ``lookup_cache_ttl``).

An N whose servers cannot all start, or whose client fails, is reported as
failed with the error's first line and the phase, and the next N runs.
Every wait has a deadline and child processes are always reaped (terminated,
then killed). Prints a table per N, the growth of each figure (ratio to the
smallest N and the log-log slope, named O(1), O(N), ...), and writes JSON
(``--json``) and a PNG plot (``--plot``, needs matplotlib: the ``bench`` extra).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import math
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from benchmarks.common import CALL_TIMEOUT, START_TIMEOUT, BenchError, configure_logging
from benchmarks.processes import Children, expect
from benchmarks.scale_matchmaker import (
    CommandCounter,
    command_delta,
    implied_matchmaker,
    private_redis,
)
from benchmarks.scale_procs import (
    FANOUT_WAIT,
    ServerShare,
    first_line,
    scale_client_main,
    scale_server_main,
    server_name,
)
from benchmarks.scale_report import build_document, format_report, plot, write_json
from zmqactors.errors import ConfigurationError
from zmqactors.options import parse_url

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from multiprocessing.connection import Connection
    from multiprocessing.context import SpawnProcess


DEFAULT_SERVERS: Final = (10, 100, 1000)
# Seconds: how long one server may take to start (on top of START_TIMEOUT),
# how long children may wait for a command before they give up on us.
START_PER_SERVER, CHILD_LIMIT = 0.5, 3600.0
# Seconds the matchmaker's commands are counted over at most (see _measure_clients).
MAX_COUNTING: Final = 60.0
# A first guess of the seconds each server costs a run (start, stop), before
# one has been measured: for the progress lines' estimate only.
GUESS_PER_SERVER: Final = 0.1


def _int_list(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(part) for part in text.split(","))
    except ValueError:
        msg = f"expected comma-separated whole numbers, got {text!r}"
        raise argparse.ArgumentTypeError(msg) from None
    if not values or any(not 1 <= value <= 100_000 for value in values):
        msg = f"every N must be from 1 to 100000, got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return tuple(sorted(set(values)))


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line; exits 2 naming the option and value for a bad one."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.scale",
        description="N RPC servers on one topic, N = 10, 100, 1000: fanout, calls, "
        "latency, resources and discovery as N grows.",
    )
    add = parser.add_argument
    add("--servers", type=_int_list, default=DEFAULT_SERVERS, help="the Ns (default 10,100,1000)")
    add("--per-process", type=int, default=200, help="servers per process at most (default 200)")
    add("--clients", type=int, default=1, help="client processes (default 1)")
    add("--executor-size", type=int, default=1, help="workers per server (default 1)")
    add("--threads", type=int, default=4, help="caller threads per client (default 4)")
    add("--duration", type=float, default=3.0, help="seconds per call figure (default 3)")
    add("--repeat", type=int, default=3, help="repeats of each call figure; the median (3)")
    add("--fanouts", type=int, default=5, help="fanout casts measured per N (default 5)")
    add(
        "--matchmaker",
        metavar="URL",
        help="a transport URL (default: a file matchmaker); a Redis password goes in "
        "$ZMQACTORS_REDIS_PASSWORD or ?redis_password_file=, not here",
    )
    add("--redis", action="store_true", help="start a private redis-server and use it")
    add("--json", metavar="PATH", type=Path, help="write the figures as JSON to PATH")
    add("--plot", metavar="PATH", type=Path, help="draw the figures into the PNG PATH")
    args = parser.parse_args(argv)
    for option, value, low, high in (
        ("--per-process", args.per_process, 1, 1000),
        ("--clients", args.clients, 1, 64),
        ("--executor-size", args.executor_size, 1, 1024),
        ("--threads", args.threads, 1, 256),
        ("--fanouts", args.fanouts, 1, 1000),
        ("--repeat", args.repeat, 1, 100),
    ):
        if not low <= value <= high:
            parser.error(f"{option} must be from {low} to {high}, got {value}")
    if not 0.1 <= args.duration <= 600:
        parser.error(f"--duration must be from 0.1 to 600 seconds, got {args.duration}")
    if args.matchmaker is not None:
        if args.redis:
            parser.error("--matchmaker and --redis: give one of them")
        try:
            kind = parse_url(args.matchmaker).matchmaker.kind
        except ConfigurationError as exc:
            parser.error(f"--matchmaker: {exc}")
        if kind == "memory":
            parser.error("--matchmaker: zmq+memory:// serves one process; the benchmark runs many")
    if args.plot is not None and importlib.util.find_spec("matplotlib") is None:
        parser.error("--plot needs matplotlib: pip install 'zmqactors[bench]'")
    return args


def split(n: int, per_process: int) -> list[tuple[int, int]]:
    """``(first, count)`` of each server process: N spread evenly, at most ``per_process`` each."""
    processes = math.ceil(n / per_process)
    base, extra = divmod(n, processes)
    shares = []
    first = 0
    for index in range(processes):
        count = base + (1 if index < extra else 0)
        shares.append((first, count))
        first += count
    return shares


class Progress:
    """Progress lines on stderr: which N, time so far, an estimate of the time left."""

    def __init__(self, sizes: Sequence[int], fixed: float) -> None:
        self._sizes = sizes
        self._fixed = fixed
        self._per_server = GUESS_PER_SERVER
        self._began = time.monotonic()
        self._current_began = self._began
        self._index = 0

    def _estimate(self, n: int) -> float:
        return self._fixed + self._per_server * n

    def begin(self, index: int) -> None:
        """N number ``index`` starts."""
        self._index = index
        self._current_began = time.monotonic()

    def end(self, n: int, *, failed: bool) -> None:
        """The current N ended: learn its cost per server for the estimate (if it completed)."""
        took = time.monotonic() - self._current_began
        if failed:
            return
        if took > self._fixed:
            self._per_server = (took - self._fixed) / n
        else:
            self._fixed = took

    def say(self, what: str) -> None:
        """Print ``what`` with the N, the time so far and the estimated time left."""
        now = time.monotonic()
        n = self._sizes[self._index]
        current_left = max(0.0, self._estimate(n) - (now - self._current_began))
        left = current_left + sum(self._estimate(m) for m in self._sizes[self._index + 1 :])
        print(
            f"[scale {_clock(now - self._began)} elapsed, ~{_clock(left)} left] N={n:,}: {what}",
            file=sys.stderr,
            flush=True,
        )


def _clock(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes}:{secs:02d}"


class _PhaseError(Exception):
    """An N failed in a phase: the phase, the error's first line, the failing process's state."""

    def __init__(self, phase: str, error: str, resources: dict[str, Any] | None = None) -> None:
        super().__init__(f"{phase}: {error}")
        self.phase = phase
        self.error = error
        self.resources = resources


def _ask(
    clients: Sequence[tuple[SpawnProcess, Connection]],
    phase: str,
    timeout: float,
    **kwargs: Any,
) -> list[dict[str, Any]]:
    """Run ``phase`` in every client of ``clients`` at once; their answers, or `_PhaseError`."""
    for _, conn in clients:
        conn.send((phase, kwargs))
    answers = []
    for process, conn in clients:
        try:
            answer: dict[str, Any] = expect(conn, process, "done", timeout)
        except BenchError as exc:
            raise _PhaseError(phase, first_line(exc)) from None
        if not answer["ok"]:
            error = f"{process.name}: {answer['error']}"
            raise _PhaseError(phase, error, {"process": process.name, **answer["resources"]})
        answers.append(answer)
    return answers


class OneN:
    """One N's run: its processes, its phases, and the record they fill in (``run``)."""

    def __init__(self, n: int, args: argparse.Namespace, url: str, topic: str) -> None:
        self.n = n
        self.args = args
        self.url = url
        self.topic = topic
        self.shares = split(n, args.per_process)
        self.run: dict[str, Any] = {
            "servers": n,
            "processes": len(self.shares),
            "figures": {},
            "error": None,
        }
        self.figures: dict[str, float] = self.run["figures"]
        self.children = Children()
        self.servers: list[tuple[SpawnProcess, Connection]] = []
        self.clients: list[tuple[SpawnProcess, Connection]] = []

    def measure(self, say: Callable[[str], None]) -> dict[str, Any]:
        """Start the processes, measure every phase, reap the processes; the run's record."""
        counter = CommandCounter(parse_url(self.url))
        began = time.monotonic()
        try:
            self._start_servers(say)
            self.figures["start_s"] = time.monotonic() - began
            say(f"{self.n:,} servers up in {self.figures['start_s']:.1f} s")
            self._start_clients()
            self._measure_clients(counter, say)
            self._server_resources()
        except _PhaseError as failed:
            self.run["error"], self.run["failed_in"] = failed.error, failed.phase
            if failed.resources is not None:
                self.run["at_failure"] = failed.resources
            say(f"FAILED in {failed.phase}: {failed.error}")
        finally:
            counter.close()
            _reap(self.children)
            self.run["seconds"] = time.monotonic() - began
        return self.run

    def _start_servers(self, say: Callable[[str], None]) -> None:
        args, shares = self.args, self.shares
        say(f"starting {len(shares)} server process(es) of {shares[0][1]:,} servers at most")
        self.figures["servers_per_process"] = float(shares[0][1])
        for index, (first, count) in enumerate(shares):
            share = ServerShare(self.url, self.topic, first, count, args.executor_size, CHILD_LIMIT)
            self.servers.append(self.children.start(f"servers-{index}", scale_server_main, share))
        timeout = START_TIMEOUT + START_PER_SERVER * shares[0][1]
        for (process, conn), (_, count) in zip(self.servers, shares, strict=True):
            try:
                ready = expect(conn, process, "ready", timeout)
            except BenchError as exc:
                raise _PhaseError("server start", first_line(exc)) from None
            if ready["error"] is not None:
                what = f"server {ready['started'] + 1} of {count}: {ready['error']}"
                resources = {"process": process.name, **ready["resources"]}
                raise _PhaseError("server start", f"{process.name}: {what}", resources)

    def _start_clients(self) -> None:
        for index in range(self.args.clients):
            self.clients.append(
                self.children.start(
                    f"client-{index}", scale_client_main, self.url, self.topic, CHILD_LIMIT
                )
            )
        for process, conn in self.clients:
            try:
                expect(conn, process, "ready", START_TIMEOUT)
            except BenchError as exc:
                raise _PhaseError("client start", first_line(exc)) from None

    def _measure_clients(self, counter: CommandCounter, say: Callable[[str], None]) -> None:
        args, figures, clients = self.args, self.figures, self.clients
        window_began, commands = time.monotonic(), counter.commands()
        say(
            f"spread calls, {args.clients} client(s) x {args.threads} threads, "
            f"{args.repeat} x {args.duration} s"
        )
        call_timeout = args.duration + 3 * CALL_TIMEOUT
        spreads = [
            _ask(clients, "spread", call_timeout, duration=args.duration, threads=args.threads)
            for _ in range(args.repeat)
        ]
        self._median_of("spread_calls_per_s", [sum(a["calls_per_s"] for a in s) for s in spreads])
        self._median_of("spread_cpu_us", [answers[0]["cpu_us_per_call"] for answers in spreads])
        say(f"{args.fanouts} fanout casts")
        reporters = [(server_name(first), count) for first, count in self.shares]
        fanout_timeout = (args.fanouts + 2) * (FANOUT_WAIT + CALL_TIMEOUT)
        (fanout,) = _ask(
            clients[:1], "fanout", fanout_timeout, fanouts=args.fanouts, processes=reporters
        )
        times = sorted(fanout["times_ms"])
        self.run["fanout_times_ms"], self.run["fanout_incomplete"] = times, fanout["incomplete"]
        figures["fanout_ms"] = _median(times)
        target = server_name(self.n // 2)
        say(f"direct calls to {target}, {args.repeat} x {args.duration} s")
        directs = [
            _ask(clients[:1], "direct", call_timeout, duration=args.duration, server=target)[0]
            for _ in range(args.repeat)
        ]
        self._median_of("direct_p50_us", [direct["p50_us"] for direct in directs])
        self._median_of("direct_p99_us", [direct["p99_us"] for direct in directs])
        self._median_of("direct_cpu_us", [direct["cpu_us_per_call"] for direct in directs])
        say("lookups, and a fresh transport's first call")
        (lookup,) = _ask(clients[:1], "lookup", START_TIMEOUT + 3 * CALL_TIMEOUT)
        figures["lookup_ms"], figures["first_call_ms"] = (
            lookup["lookup_ms"],
            lookup["first_call_ms"],
        )
        self.run["routes_found"] = lookup["routes"]
        if counter.counted:
            # Every server's registration is refreshed once per matchmaker_ttl/3,
            # all of a process's at once: count over two such periods at least.
            settings = parse_url(self.url)
            rest = min(MAX_COUNTING, 2 * settings.matchmaker_ttl / 3)
            rest -= time.monotonic() - window_began
            if rest > 0:
                say(f"counting matchmaker commands {rest:.0f} s more (two refresh periods)")
                time.sleep(rest)
        window = time.monotonic() - window_began
        answers = _ask(clients, "resources", CALL_TIMEOUT)
        resources = answers[0]["resources"]
        figures["client_rss_mib"] = resources["rss_mib"]
        figures["client_threads"] = resources["threads"]
        figures["client_fds"] = resources["fds"]
        self.run["client_stats"] = [answer["stats"] for answer in answers]
        if counter.counted:
            self.run["matchmaker_window_s"] = window
            delta = command_delta(commands, counter.commands())
            figures["matchmaker_per_s"] = sum(delta.values()) / window
            self.run["matchmaker_commands"] = delta
            self.run["matchmaker_source"] = "the Redis server's INFO commandstats"

    def _median_of(self, key: str, samples: list[float]) -> None:
        """Keep a figure's samples (one per repeat) in the record; the figure is their median."""
        self.run.setdefault("samples", {})[key] = samples
        self.figures[key] = _median(sorted(samples))

    def _server_resources(self) -> None:
        """Ask each server process for its resources (servers still up), then to stop."""
        for _, conn in self.servers:
            with contextlib.suppress(OSError):
                conn.send("stop")
        finals = []
        for process, conn in self.servers:
            try:
                finals.append(expect(conn, process, "result", CALL_TIMEOUT))
            except BenchError as exc:
                raise _PhaseError("server resources", first_line(exc)) from None
        largest, hosted = finals[0]["resources"], self.shares[0][1]
        self.figures["server_rss_mib"] = largest["rss_mib"]
        self.figures["server_threads"] = largest["threads"]
        self.figures["server_fds"] = largest["fds"]
        self.figures["server_threads_per_server"] = largest["threads"] / hosted
        self.figures["server_fds_per_server"] = largest["fds"] / hosted
        self.run["server_stats"] = [final["stats"] for final in finals]


def _reap(children: Children) -> None:
    """Let the children stop on their own for a few seconds, then terminate or kill them."""
    deadline = time.monotonic() + 5.0
    for process, conn in children.started:
        with contextlib.suppress(OSError):
            conn.send("stop")
        process.join(max(0.0, deadline - time.monotonic()))
    children.close()


def _median(values: Sequence[float]) -> float:
    if not values:
        return float("nan")
    middle = len(values) // 2
    return values[middle] if len(values) % 2 else (values[middle - 1] + values[middle]) / 2


def run_all(
    sizes: Sequence[int],
    measure_one: Callable[[int, Callable[[str], None]], dict[str, Any]],
    progress: Progress,
) -> list[dict[str, Any]]:
    """Measure every N in order; a failed N is recorded and the next one runs."""
    runs = []
    for index, n in enumerate(sizes):
        progress.begin(index)
        try:
            run = measure_one(n, progress.say)
        except BenchError as exc:
            run = {"servers": n, "figures": {}, "error": first_line(exc), "failed_in": "setup"}
        progress.end(n, failed=bool(run.get("error")))
        runs.append(run)
    return runs


def _terminate(signum: int, frame: object) -> None:
    del frame
    # SystemExit unwinds through every finally: the children are reaped.
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the scale benchmark; 0 if every N completed, 1 if one failed, 2 for bad arguments."""
    args = parse_args(argv)
    configure_logging()
    signal.signal(signal.SIGTERM, _terminate)
    directory = Path(tempfile.mkdtemp(prefix="zmqactors-scale-"))
    try:
        with contextlib.ExitStack() as stack:
            if args.redis:
                args.matchmaker = stack.enter_context(private_redis(directory / "redis"))
            document = _run(args, directory)
    except BenchError as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    print(format_report(document))
    if args.json is not None:
        write_json(document, args.json)
        print(f"JSON: {args.json}")
    if args.plot is not None:
        plot(document, args.plot)
        print(f"plot: {args.plot}")
    return 1 if any(run.get("error") for run in document["runs"]) else 0


def _run(args: argparse.Namespace, directory: Path) -> dict[str, Any]:
    """Measure every N of ``args.servers``; the report's document."""
    token = directory.name.rpartition("-")[2]
    began = time.monotonic()
    fixed = 2 * args.repeat * args.duration + args.fanouts * 0.5 + 15.0

    def url_for(n: int) -> str:
        if args.matchmaker is not None:
            return str(args.matchmaker)
        return f"zmq+file://{directory}/matchmaker-{n}?bind_address=127.0.0.1"

    def measure_one(n: int, say: Callable[[str], None]) -> dict[str, Any]:
        run = OneN(n, args, url_for(n), f"zmqactors-scale-{token}-{n}").measure(say)
        implied_matchmaker(run, parse_url(url_for(n)), args.clients)
        return run

    runs = run_all(args.servers, measure_one, Progress(args.servers, fixed))
    if args.redis:
        shown = "a private redis-server"
    elif args.matchmaker:
        shown = parse_url(args.matchmaker).matchmaker.url
    else:
        shown = "a file matchmaker (temporary directory)"
    config = {
        "matchmaker": shown,
        "per_process": args.per_process,
        "clients": args.clients,
        "executor_size": args.executor_size,
        "threads": args.threads,
        "duration": args.duration,
        "fanouts": args.fanouts,
        "repeat": args.repeat,
    }
    sources = sorted({run["matchmaker_source"] for run in runs if run.get("matchmaker_source")})
    return build_document(config, runs, "; ".join(sources) or "-", time.monotonic() - began)


if __name__ == "__main__":
    sys.exit(main())
