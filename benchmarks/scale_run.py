"""One N of the scale benchmark: start its processes, run its phases, reap the processes.

`OneN.measure` fills in one run's record (``servers``, ``processes``,
``figures``, ``error``, ``failed_in``, samples and counters); `benchmarks.scale`
runs one per N and reports them.
"""

from __future__ import annotations

import contextlib
import math
import statistics
import time
from typing import TYPE_CHECKING, Any, Final

from benchmarks.common import CALL_TIMEOUT, START_TIMEOUT, BenchError
from benchmarks.processes import Children, expect
from benchmarks.scale_matchmaker import CommandCounter, command_delta
from benchmarks.scale_procs import (
    FANOUT_WAIT,
    ServerShare,
    first_line,
    scale_client_main,
    scale_server_main,
    server_name,
)
from zmqactors.options import parse_url

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable, Sequence
    from multiprocessing.connection import Connection
    from multiprocessing.context import SpawnProcess

# Seconds: how long one server may take to start (on top of START_TIMEOUT),
# how long children may wait for a command before they give up on us.
START_PER_SERVER, CHILD_LIMIT = 0.5, 3600.0
# Seconds the matchmaker's commands are counted over at most (see _measure_clients).
MAX_COUNTING: Final = 60.0


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


class PhaseError(Exception):
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
    """Run ``phase`` in every client of ``clients`` at once; their answers, or `PhaseError`."""
    for _, conn in clients:
        conn.send((phase, kwargs))
    answers = []
    for process, conn in clients:
        try:
            answer: dict[str, Any] = expect(conn, process, "done", timeout)
        except BenchError as exc:
            raise PhaseError(phase, first_line(exc)) from None
        if not answer["ok"]:
            error = f"{process.name}: {answer['error']}"
            raise PhaseError(phase, error, {"process": process.name, **answer["resources"]})
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
        except PhaseError as failed:
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
                raise PhaseError("server start", first_line(exc)) from None
            if ready["error"] is not None:
                what = f"server {ready['started'] + 1} of {count}: {ready['error']}"
                resources = {"process": process.name, **ready["resources"]}
                raise PhaseError("server start", f"{process.name}: {what}", resources)

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
                raise PhaseError("client start", first_line(exc)) from None

    def _measure_clients(self, counter: CommandCounter, say: Callable[[str], None]) -> None:
        args, figures, clients = self.args, self.figures, self.clients
        window_began, commands = time.monotonic(), counter.commands()
        # First, as its warm-up cast connects the client to every server: the
        # call figures then measure a client in its steady state.
        say(f"{args.fanouts} fanout casts")
        reporters = [(server_name(first), count) for first, count in self.shares]
        fanout_timeout = (args.fanouts + 2) * (FANOUT_WAIT + CALL_TIMEOUT)
        (fanout,) = _ask(
            clients[:1], "fanout", fanout_timeout, fanouts=args.fanouts, processes=reporters
        )
        times = sorted(fanout["times_ms"])
        self.run["fanout_times_ms"], self.run["fanout_incomplete"] = times, fanout["incomplete"]
        self.run["fanout_fewest_reached"] = fanout["fewest_reached"]
        figures["fanout_ms"] = _median(times)
        # The other clients connect the same way (a fanout of echo) before measuring.
        _ask(clients[1:], "connect", CALL_TIMEOUT)
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
        if lookup.get("lookup_error"):
            self.run["lookup_error"] = lookup["lookup_error"]
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
        self.figures[key] = _median(samples)

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
                raise PhaseError("server resources", first_line(exc)) from None
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
    """The median of ``values``; NaN when there are none (every fanout incomplete)."""
    return statistics.median(values) if values else float("nan")
