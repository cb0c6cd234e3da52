"""The scale benchmark's child processes: a process of servers, and a client run phase by phase.

Both use only the public API (`zmqactors.Transport`, `RPCServer`, `RPCClient`,
`Target`, ``transport.stats``), so the same benchmark measures the code before
and after a change of the internals; the lookup phase also reads the matchmaker
backend directly (`zmqactors.matchmaker.matchmaker_for`), as an operator's
tool would.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import os
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import structlog

import zmqactors as za
from benchmarks.calls import za_threaded_calls
from benchmarks.common import CALL_TIMEOUT, make_payload, percentile, round_trips, shared_clock
from benchmarks.processes import run_child, send_result, wait_for_stop

if TYPE_CHECKING:
    from collections.abc import Callable, MutableMapping, Sequence
    from multiprocessing.connection import Connection

# Seconds a fanout may take to reach every server before it counts as
# incomplete; how many times the lookup phase asks the backend.
FANOUT_WAIT: Final = 10.0
# Seconds between two questions to the server processes about a fanout's arrivals.
POLL_INTERVAL: Final = 0.005
LOOKUPS: Final = 20
# Seconds a server process takes at most to stop its servers politely.
SERVER_STOP: Final = 20.0


def quiet_logging() -> None:
    """Warnings and errors on one line each to stderr, an exception as its type and message.

    A limit reached at scale fails many calls at once; a traceback for each
    would bury the progress lines. This program is an application and may
    configure logging; the library never does.
    """
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        # stdout is the report's (the children inherit it).
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        processors=[
            structlog.processors.add_log_level,
            _exception_in_one_line,
            structlog.processors.KeyValueRenderer(key_order=["level", "event"]),
        ],
    )


def _exception_in_one_line(
    logger: object, method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    del logger, method
    exc_info = event.pop("exc_info", None)
    exc = sys.exc_info()[1] if exc_info is True else exc_info
    if isinstance(exc, BaseException):
        event["error"] = first_line(exc)
    return event


def server_name(index: int) -> str:
    """The name of server ``index`` of a run (sorted by index as text)."""
    return f"scale-{index:05d}"


def first_line(exc: BaseException) -> str:
    """``Type: first line of the message``: how a failed N is reported.

    Control and other unprintable characters are escaped: a `RemoteError`'s
    message came from the network, and the report goes to a terminal.
    """
    lines = str(exc).strip().splitlines()
    text = f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
    return "".join(char if char.isprintable() else ascii(char)[1:-1] for char in text)


def proc_resources(pid: int | str = "self") -> dict[str, float]:
    """RSS (MiB), threads and open file descriptors of process ``pid``, from ``/proc``."""
    figures = {"rss_mib": float("nan"), "threads": float("nan"), "fds": float("nan")}
    with contextlib.suppress(OSError):
        with Path(f"/proc/{pid}/status").open(encoding="ascii", errors="replace") as status:
            for line in status:
                name, _, value = line.partition(":")
                if name == "VmRSS":
                    figures["rss_mib"] = int(value.split()[0]) / 1024
                elif name == "Threads":
                    figures["threads"] = float(value.strip())
        figures["fds"] = float(sum(1 for _ in Path(f"/proc/{pid}/fd").iterdir()))
    return figures


class ScaleEndpoint:
    """The endpoint every server of one process shares: an echo, and fanout arrivals.

    Its methods run on the servers' worker threads, so arrivals are locked.
    Times are `shared_clock` readings (CLOCK_MONOTONIC, one clock for every
    process of the machine).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # Fanout sequence -> (arrivals in this process, time of the last one).
        self._arrivals: dict[str, tuple[int, float]] = {}

    def echo(self, data: str) -> str:
        """Return ``data``."""
        return data

    def arrive(self, seq: str) -> None:
        """Record that fanout ``seq`` reached one more server of this process, and when."""
        now = shared_clock()
        with self._lock:
            count, last = self._arrivals.get(seq, (0, 0.0))
            self._arrivals[seq] = (count + 1, max(last, now))

    def report(self, seq: str) -> dict[str, float]:
        """The arrivals of fanout ``seq`` in this process so far: their count and last time.

        Answers at once: a worker blocked here would hold back the arrivals
        it waits for whenever the servers share few workers.
        """
        with self._lock:
            count, last = self._arrivals.get(seq, (0, 0.0))
        return {"count": float(count), "last": last}


@dataclasses.dataclass(frozen=True)
class ServerShare:
    """What one server process hosts: servers ``first`` .. ``first + count - 1`` of ``topic``."""

    url: str
    topic: str
    first: int
    count: int
    executor_size: int
    # Seconds the process serves at most without being told to stop.
    limit: float


def scale_server_main(conn: Connection, share: ServerShare) -> None:
    """A server process: one transport hosting the servers of ``share``.

    Starts them one after the other and sends ``("ready", {"started",
    "seconds", "error", "resources"})`` (``error``: the first line of what
    stopped the starts, or None); then serves until told to stop (``share.limit`` s at
    most), sends ``("result", {"resources", "stats"})`` measured with every
    server still up, and stops them.
    """

    def body() -> None:
        quiet_logging()
        endpoint = ScaleEndpoint()
        with za.Transport.from_url(share.url) as transport:
            servers: list[za.RPCServer] = []
            error = None
            began = time.monotonic()
            try:
                for index in range(share.first, share.first + share.count):
                    server = za.RPCServer(
                        transport,
                        za.Target(topic=share.topic, server=server_name(index)),
                        [endpoint],
                        executor_size=share.executor_size,
                    )
                    server.start()
                    servers.append(server)
            except Exception as exc:  # noqa: BLE001 - a limit reached is a result, reported
                error = first_line(exc)
            send_result(
                conn,
                "ready",
                {
                    "started": len(servers),
                    "seconds": time.monotonic() - began,
                    "error": error,
                    "resources": proc_resources(),
                },
            )
            wait_for_stop(conn, share.limit)
            send_result(
                conn,
                "result",
                {"resources": proc_resources(), "stats": dict(transport.stats.snapshot())},
            )
            _stop_all(servers)

    run_child(conn, body)


def _stop_all(servers: Sequence[za.RPCServer]) -> None:
    """Stop ``servers`` within `SERVER_STOP` s in all; the orchestrator kills what is left."""
    deadline = time.monotonic() + SERVER_STOP
    for server in servers:
        server.stop()
    for server in servers:
        left = deadline - time.monotonic()
        if left <= 0:
            return
        with contextlib.suppress(za.MessagingError):
            server.wait(timeout=left)


class ClientPhases:
    """What a client process measures, one phase per orchestrator command.

    Every method returns a dict of figures and raises what the library raises;
    the command loop in `scale_client_main` reports that as the phase's error.
    """

    def __init__(self, transport: za.Transport, url: str, topic: str) -> None:
        self.transport = transport
        self.url = url
        self.topic = topic
        self.payload = make_payload()
        self.client = za.RPCClient(transport, za.Target(topic=topic), timeout=CALL_TIMEOUT)

    def spread(self, duration: float, threads: int) -> dict[str, float]:
        """Calls to the topic (any server) from ``threads`` threads: calls/s, CPU µs per call."""
        began, cpu = time.perf_counter(), time.process_time()
        rate = za_threaded_calls(self.client, self.payload, duration, threads)
        cpu_s = time.process_time() - cpu
        calls = rate * (time.perf_counter() - began)
        return {"calls_per_s": rate, "cpu_us_per_call": cpu_s / max(calls, 1.0) * 1e6}

    def fanout(self, fanouts: int, processes: Sequence[tuple[str, int]]) -> dict[str, Any]:
        """``fanouts`` fanout casts, one at a time; each one's time to reach every server.

        ``processes`` names one server of each server process and how many
        servers that process hosts; each is asked for its arrivals until all
        arrived or `FANOUT_WAIT` passed (how often it is asked does not change
        the figure: the servers time the arrivals). The first fanout is a
        warm-up. Returns the times in ms of the complete ones, how many were
        incomplete (some server got nothing within `FANOUT_WAIT`) and the
        fewest servers an incomplete one reached.
        """
        fanout = self.client.prepare(fanout=True)
        reporters = [self.client.prepare(server=name) for name, _ in processes]
        expected = sum(servers for _, servers in processes)
        times: list[float] = []
        incomplete = 0
        fewest = float(expected)
        token = os.urandom(4).hex()
        for round_ in range(fanouts + 1):
            seq = f"{token}-{round_}"
            sent = shared_clock()
            fanout.cast("arrive", seq=seq)
            deadline = time.monotonic() + FANOUT_WAIT
            while True:
                pending = [reporter.call_async("report", seq=seq) for reporter in reporters]
                reports = [future.result(timeout=CALL_TIMEOUT) for future in pending]
                arrived = sum(report["count"] for report in reports)
                if arrived >= expected or time.monotonic() > deadline:
                    break
                time.sleep(POLL_INTERVAL)
            if round_ == 0:
                continue
            if arrived >= expected:
                times.append((max(report["last"] for report in reports) - sent) * 1e3)
            else:
                incomplete += 1
                fewest = min(fewest, arrived)
        return {"times_ms": times, "incomplete": incomplete, "fewest_reached": fewest}

    def connect(self) -> dict[str, float]:
        """A fanout cast of ``echo``: this client connects to every server of the topic."""
        self.client.prepare(fanout=True).cast("echo", data="")
        return {}

    def direct(self, duration: float, server: str) -> dict[str, float]:
        """Sync calls to the one server ``server`` for ``duration`` s: p50/p99 µs, CPU per call."""
        direct = self.client.prepare(server=server)
        direct.call("echo", data=self.payload)
        cpu = time.process_time()
        figures = round_trips(functools.partial(direct.call, "echo", data=self.payload), duration)
        cpu_s = time.process_time() - cpu
        calls = figures["rate"] * duration
        return {
            "p50_us": figures["p50_us"],
            "p99_us": figures["p99_us"],
            "cpu_us_per_call": cpu_s / max(calls, 1.0) * 1e6,
        }

    def lookup(self) -> dict[str, Any]:
        """The topic's routes read from the backend (ms), and a fresh transport's first call (ms).

        The lookup asks the matchmaker backend itself (`matchmaker_for` on this
        transport's settings), `LOOKUPS` times: what a cache miss costs. It
        reaches below the public API, so if that fails, only this figure is
        lost (``lookup_error``). The first call is a sync call from a new
        transport in this process: its actors start, it looks the topic up,
        connects and calls.
        """
        try:
            figures: dict[str, Any] = self._backend_lookups()
        except Exception as exc:  # noqa: BLE001 - reported with the figures, the rest goes on
            nan = float("nan")
            figures = {"lookup_ms": nan, "lookup_p99_ms": nan, "routes": nan}
            figures["lookup_error"] = first_line(exc)
        began = time.perf_counter()
        with za.Transport.from_url(self.url) as fresh:
            za.RPCClient(fresh, za.Target(topic=self.topic), timeout=CALL_TIMEOUT).call(
                "echo", data=self.payload
            )
            figures["first_call_ms"] = (time.perf_counter() - began) * 1e3
        return figures

    def _backend_lookups(self) -> dict[str, float]:
        # Not the public API: imported here so that a change there costs this figure only.
        from zmqactors.matchmaker import matchmaker_for  # noqa: PLC0415
        from zmqactors.topics.keys import matchmaker_key  # noqa: PLC0415

        backend = matchmaker_for(self.transport.settings)
        key = matchmaker_key(za.Target(topic=self.topic))
        took: list[float] = []
        routes = 0
        try:
            for _ in range(LOOKUPS):
                began = time.perf_counter()
                routes = len(backend.lookup(key))
                took.append((time.perf_counter() - began) * 1e3)
        finally:
            backend.close()
        took.sort()
        return {
            "lookup_ms": percentile(took, 0.5),
            "lookup_p99_ms": percentile(took, 0.99),
            "routes": float(routes),
        }

    def resources(self) -> dict[str, Any]:
        """RSS, threads and fds of the client process, and its transport's counters."""
        return {"resources": proc_resources(), "stats": dict(self.transport.stats.snapshot())}


def scale_client_main(conn: Connection, url: str, topic: str, limit: float) -> None:
    """A client process: one transport; runs the phases the orchestrator asks for.

    Sends ``("ready", None)``, then for each ``(phase, kwargs)`` received
    answers ``("done", {"ok": True, **figures})`` or ``("done", {"ok": False,
    "error": first line, "resources": this process's then})``; ends on
    ``"stop"``, a closed pipe, or ``limit`` seconds without a command.
    """

    def body() -> None:
        quiet_logging()
        with za.Transport.from_url(url) as transport:
            phases = ClientPhases(transport, url, topic)
            run: dict[str, Callable[..., dict[str, Any]]] = {
                "spread": phases.spread,
                "fanout": phases.fanout,
                "connect": phases.connect,
                "direct": phases.direct,
                "lookup": phases.lookup,
                "resources": phases.resources,
            }
            send_result(conn, "ready", None)
            while True:
                try:
                    if not conn.poll(limit):
                        return
                    command = conn.recv()
                except (EOFError, OSError):
                    return
                if command == "stop":
                    return
                phase, kwargs = command
                try:
                    figures = run[phase](**kwargs)
                except Exception as exc:  # noqa: BLE001 - the failure is the phase's result
                    failed = {"ok": False, "error": first_line(exc), "resources": proc_resources()}
                    send_result(conn, "done", failed)
                else:
                    send_result(conn, "done", {"ok": True, **figures})

    run_child(conn, body)
