"""What every benchmark process shares: settings, names, clocks and small measures."""

from __future__ import annotations

import dataclasses
import logging
import os
import random
import resource
import string
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Final, Literal

import structlog

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence


# Sizes of one run: argument bytes, calls outstanding, caller threads; fanouts
# go to FANOUT_SERVERS sink processes, notifications to one of them, then to a
# pool of POOL_LISTENERS.
PAYLOAD_SIZE, PIPELINE_DEPTH, CALLER_THREADS = 100, 100, 16
# The concurrency sweep: caller threads, each system (CALLER_THREADS among them).
SWEEP_THREADS: Final = (1, 2, 4, 16, 64)
# The systems, in the order each round measures them: raw pyzmq, Pyro5, zmqactors.
SYSTEMS: Final = ("raw", "pyro", "za")
SYSTEM_NAMES: Final = {"raw": "raw pyzmq", "pyro": "Pyro5", "za": "zmqactors"}
FANOUT_SERVERS, POOL_LISTENERS = 3, 2
# Casts (and notifications) sent between two flow-control checkpoints (see the
# package docstring); fanouts are slower and send a message per server, so fewer.
# Two batches in flight stay below the server's max_queued_per_client (1,000):
# past it, the checkpoint call itself would be refused as busy.
CAST_BATCH, FANOUT_BATCH = 400, 250
# CURVE may cost zmqactors at most this share of its call throughput.
CURVE_COST_TARGET: Final = 0.25
# The names of a run's targets, server, pool, publisher and event.
TOPIC, CURVE_TOPIC = "zmqactors-bench", "zmqactors-bench-curve"
SINK_TOPIC: Final = "zmqactors-bench-fanout"
NOTIFY_ONE_TOPIC, NOTIFY_POOL_TOPIC = "zmqactors-bench-notify-one", "zmqactors-bench-notify-pool"
SERVER, POOL, PUBLISHER, EVENT_TYPE = "bench-server", "bench-pool", "bench-publisher", "bench.event"
DEFAULT_HOST: Final = "127.0.0.1"
# Seconds: a call's deadline (how long any socket or future wait may block);
# how long a child process may take to be ready, and to report its last figures.
CALL_TIMEOUT, START_TIMEOUT, STOP_TIMEOUT = 10.0, 60.0, 15.0
NS: Final = 1e9
# A clock shared by every process on the machine, so that receivers in several
# processes can be put on one time line (CLOCK_MONOTONIC on Linux).
shared_clock: Final = time.monotonic


def sink_name(index: int) -> str:
    """The server name of sink ``index``'s `RPCServer`."""
    return f"bench-sink-{index}"


def sink_notify_topics(index: int) -> tuple[str, ...]:
    """The notification topics sink ``index`` listens on (as a member of `POOL`)."""
    if index == 0:
        return (NOTIFY_ONE_TOPIC, NOTIFY_POOL_TOPIC)
    if index < POOL_LISTENERS:
        return (NOTIFY_POOL_TOPIC,)
    return ()


class BenchError(Exception):
    """A benchmark process failed, timed out or answered something unexpected."""


@dataclasses.dataclass(frozen=True)
class BenchConfig:
    """What a client process measures: durations in seconds, repeats, server addresses."""

    duration: float
    warmup: float
    repeat: int
    # The loopback address every server binds (--host): 127.0.0.1 or ::1.
    host: str = DEFAULT_HOST
    addresses: dict[str, str] = dataclasses.field(default_factory=dict)
    # CURVE key files: "server" and "client" secret key files, "allowed" directory.
    curve: dict[str, str] = dataclasses.field(default_factory=dict)

    def curve_url(self, url: str, role: Literal["server", "client"]) -> str:
        """``url`` with the CURVE options of ``role`` as query parameters."""
        query = f"curve_secret_key_file={self.curve[role]}"
        if role == "server":
            query += f"&curve_public_keys_dir={self.curve['allowed']}"
        return f"{url}{'&' if '?' in url else '?'}{query}"

    def budget(self, phases: int) -> float:
        """Seconds a client with ``phases`` figures per repeat may take before it is given up."""
        per_phase = self.duration + self.warmup + CALL_TIMEOUT
        return START_TIMEOUT + self.repeat * phases * per_phase


def configure_logging() -> None:
    """Show only warnings and errors from structlog in this process.

    The library never configures logging; this program is an application and may.
    """
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))


def peak_rss_mib() -> float:
    """Return the peak resident set size of this process in MiB."""
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # ru_maxrss is in bytes on macOS, in KiB on Linux.
    return maxrss / (1024 * 1024) if sys.platform == "darwin" else maxrss / 1024


def cpu_seconds(pid: int | None = None) -> float:
    """User + system CPU seconds used so far by every thread of process ``pid`` (None: this one).

    Another process is read from ``/proc/<pid>/stat`` (Linux; NaN elsewhere), in
    clock ticks of 10 ms: measure over seconds, not milliseconds.
    """
    if pid is None:
        return time.process_time()
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return float("nan")
    # After "pid (comm) ": state is field 3, utime field 14 and stime field 15.
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def with_cpu(pipelined: Callable[[], float], server_pid: int) -> dict[str, float]:
    """Run ``pipelined`` (returns calls/s); add the client's and the server's CPU µs per call.

    Calls are counted as the rate times the wall time of the whole run (its
    few priming and draining calls included), CPU over the same time.
    """
    clock = time.perf_counter
    client, server, start = cpu_seconds(), cpu_seconds(server_pid), clock()
    rate = pipelined()
    calls = max(rate * (clock() - start), 1.0)
    return {
        "rate": rate,
        "client_cpu_us": (cpu_seconds() - client) / calls * 1e6,
        "server_cpu_us": (cpu_seconds(server_pid) - server) / calls * 1e6,
    }


def make_payload(size: int = PAYLOAD_SIZE) -> str:
    """A random ASCII string of ``size`` characters (as many bytes encoded)."""
    return "".join(random.choices(string.ascii_letters + string.digits, k=size))


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile (``fraction`` in [0, 1]) of an ascending sequence."""
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(fraction * len(sorted_values)) - 1))
    return sorted_values[index]


def round_trips(round_trip: Callable[[], object], duration: float) -> dict[str, float]:
    """Run ``round_trip`` one after the other for ``duration`` s: rate/s, p50/p99 µs."""
    clock = time.perf_counter_ns
    latencies: list[int] = []
    record = latencies.append
    start = now = clock()
    end = start + int(duration * NS)
    while now < end:
        round_trip()
        done = clock()
        record(done - now)
        now = done
    ordered = sorted(latencies)
    return {
        "rate": len(latencies) * NS / (now - start),
        "p50_us": percentile(ordered, 0.50) / 1000,
        "p99_us": percentile(ordered, 0.99) / 1000,
    }


def delivery_window(reports: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """Combine receivers' ``count``/``first``/``last`` reports into one round's figures.

    Returns ``total`` (messages counted by all), ``smallest`` (the fewest one
    receiver counted: the fanouts that all of them got) and ``window``
    (seconds from the first message received by any to the last received by any).
    """
    counted = [r for r in reports if r["count"]]
    window = (
        max(float(r["last"]) for r in counted) - min(float(r["first"]) for r in counted)
        if counted
        else 0.0
    )
    return {
        "total": float(sum(r["count"] for r in reports)),
        "smallest": float(min((r["count"] for r in reports), default=0)),
        "window": window,
    }


def per_s(count: float, window: float) -> float:
    """Messages per second over a receivers' window."""
    return count / max(window, 1e-9)


def median(values: Sequence[float]) -> float:
    """The median of one figure's samples over the rounds (NaN if there are none)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2
