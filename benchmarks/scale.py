"""``make bench-scale`` (``python -m benchmarks.scale``): N servers on one topic, N = 10 .. 1,000.

For each N of ``--servers`` (default ``10,100,1000``) this program starts
``ceil(N / --per-process)`` server processes, each one transport hosting its
share of the N servers (`RPCServer`) of one topic (``--executor-size`` workers
each), and ``--clients`` client processes, all on one matchmaker (a file
matchmaker in a fresh temporary directory per N, or ``--matchmaker URL``
with a fresh topic per N). It then measures, one phase at a time (call
figures ``--repeat`` times, the median reported):

- fanout: ``--fanouts`` fanout casts from client 0, one at a time, after a
  warm-up one that also connects the client to every server (the other
  clients then cast a fanout of ``echo`` to connect as well); every server
  records when the cast reached it (CLOCK_MONOTONIC, one clock for the
  processes of a host); the figure is the median over the casts of (last
  arrival - send time);
- spread: sync calls to the topic (no server named) from ``--threads``
  threads in every client process at once for ``--duration`` s: calls/s
  (all clients) and the client process's CPU per call (``process_time``,
  every thread of the process; client 0);
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
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from benchmarks.common import BenchError, configure_logging
from benchmarks.scale_matchmaker import implied_matchmaker, private_redis
from benchmarks.scale_procs import first_line
from benchmarks.scale_report import build_document, format_report, plot, write_json
from benchmarks.scale_run import OneN
from zmqactors.errors import ConfigurationError
from zmqactors.options import parse_url

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence


DEFAULT_SERVERS: Final = (10, 100, 1000)
# The error of the N that an interrupt stopped.
INTERRUPTED: Final = "interrupted"
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


def run_all(
    sizes: Sequence[int],
    measure_one: Callable[[int, Callable[[str], None]], dict[str, Any]],
    progress: Progress,
) -> list[dict[str, Any]]:
    """Measure every N in order; a failed N is recorded and the next one runs.

    An interrupt (Ctrl-C, SIGTERM) ends the run: the N it stopped is
    recorded as interrupted, and the Ns before it are kept for the report.
    """
    runs = []
    for index, n in enumerate(sizes):
        progress.begin(index)
        try:
            run = measure_one(n, progress.say)
        except BenchError as exc:
            run = {"servers": n, "figures": {}, "error": first_line(exc), "failed_in": "setup"}
        except KeyboardInterrupt:
            progress.say("interrupted")
            runs.append({"servers": n, "figures": {}, "error": INTERRUPTED, "failed_in": "-"})
            break
        progress.end(n, failed=bool(run.get("error")))
        runs.append(run)
    return runs


def _terminate(signum: int, frame: object) -> None:
    del signum, frame
    # As Ctrl-C: unwinds through every finally (the children are reaped),
    # then the Ns measured so far are reported.
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    """Run the scale benchmark; 0 if every N completed, 1 if one failed, 2 for bad arguments.

    130 when interrupted (Ctrl-C, SIGTERM): the Ns measured so far are reported.
    """
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
    errors = [run.get("error") for run in document["runs"]]
    if INTERRUPTED in errors:
        return 130
    return 1 if any(errors) else 0


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
