"""The ledger: load against server processes, counting what was lost, duplicated or misrouted.

N client threads send calls and casts with unique ids to S RPC servers, each
in its own process (``ledger_server.py``, real TCP on loopback, found through a
file matchmaker). Every call's outcome (result or error) is written in the
ledger by the caller; every delivery is written by the server that served it
and drained into the ledger while the load runs. Per id:

- **lost**: a cast never delivered, a call with no outcome, or a call whose
  result came back although no server recorded serving it;
- **duplicated**: delivered twice, or two outcomes;
- **misrouted**: delivered to another server than the one it was addressed
  to (``prepare(server=...)``), delivered with someone else's arguments, or a
  result whose payload is not the call's own.

Ids are settled (and forgotten, but for one byte) as soon as they are complete,
latencies go to a fixed-size histogram, and servers' records are drained in
chunks, so neither the harness nor the servers grow with the run's length:
RSS and open descriptors of the client and of every server are sampled, and a
steady growth fails the run (`flatness`).

``python tests/reliability/ledger.py --threads 64 --duration 60`` (``make
soak``) prints the table and exits non-zero when a count is not zero or
something grew; ``tests/reliability/test_ledger.py`` runs the short form.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import dataclasses
import itertools
import math
import os
import selectors
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import zmqactors as za

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

HERE = Path(__file__).resolve().parent
SERVER_SCRIPT = HERE / "ledger_server.py"
TOPIC = "ledger"
CALL = "call"
CAST = "cast"
DRAIN_CHUNK = 5000
READY_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
MIB = 1024 * 1024


# --- server processes ----------------------------------------------------------------


class ServerProcess:
    """One ``ledger_server.py`` process; ``prefix`` runs it inside something (``ip netns exec``)."""

    def __init__(
        self,
        url: str,
        name: str,
        *,
        topic: str = TOPIC,
        prefix: Sequence[str] = (),
        executor_size: int | None = None,
    ) -> None:
        self.url = url
        self.name = name
        self.topic = topic
        self.prefix = tuple(prefix)
        self.executor_size = executor_size
        self.address = ""
        self.pid = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.lines: list[str] = []
        self._reader: threading.Thread | None = None

    def start(self, timeout: float = READY_TIMEOUT) -> ServerProcess:
        """Start it; return once it printed ``ready`` (bound and registered)."""
        extra = () if self.executor_size is None else ("--executor-size", str(self.executor_size))
        args = [
            *self.prefix,
            sys.executable,
            str(SERVER_SCRIPT),
            "--url",
            self.url,
            "--topic",
            self.topic,
            "--server",
            self.name,
            *extra,
        ]
        self.lines = []
        self.proc = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        self._wait_ready(timeout)
        return self

    def _wait_ready(self, timeout: float) -> None:
        assert self.proc is not None
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        partial = b""
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as selector:
            selector.register(fd, selectors.EVENT_READ)
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    self.kill()
                    msg = f"server {self.name} not ready within {timeout}s: {self.lines}"
                    raise RuntimeError(msg)
                if selector.select(timeout=min(left, 0.1)):
                    chunk = os.read(fd, 65536)
                    if not chunk:
                        code = self.proc.wait(timeout=STOP_TIMEOUT)
                        msg = f"server {self.name} exited with {code} before ready: {self.lines}"
                        raise RuntimeError(msg)
                    partial += chunk
                    *complete, partial = partial.split(b"\n")
                    self.lines.extend(line.decode(errors="replace") for line in complete)
                    for line in self.lines:
                        if line.startswith("ready "):
                            _, self.address, pid = line.split()
                            self.pid = int(pid)
                            # Read on while it runs: a pipe nobody reads
                            # blocks the server at its 64 KiB of warnings.
                            self._reader = threading.Thread(
                                target=self._read_on, args=(partial, self.lines), daemon=True
                            )
                            self._reader.start()
                            return

    def _read_on(self, partial: bytes, lines: list[str]) -> None:
        """Add each line the server prints to ``lines``, until it exits (end of file)."""
        assert self.proc is not None
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        while chunk := os.read(fd, 65536):
            partial += chunk
            *complete, partial = partial.split(b"\n")
            lines.extend(line.decode(errors="replace") for line in complete)
        if partial:
            lines.append(partial.decode(errors="replace"))

    def running(self) -> bool:
        """Whether the process is still alive (stopped with SIGSTOP counts as alive)."""
        return self.proc is not None and self.proc.poll() is None

    def signal(self, signum: int) -> None:
        """Send ``signum`` to the server (its own pid, not a ``prefix`` wrapper's)."""
        if self.running():
            os.kill(self.pid, signum)

    def kill(self) -> None:
        """SIGKILL (a crash: nothing unregistered) and reap it."""
        if self.proc is not None and self.proc.poll() is None:
            if self.pid:
                os.kill(self.pid, signal.SIGKILL)
            self.proc.kill()
            self.proc.wait(timeout=STOP_TIMEOUT)

    def stop(self) -> int | None:
        """SIGCONT and SIGTERM, SIGKILL after 10 s; reap it and return its status.

        What it printed after ``ready`` (its warnings, say) is added to `lines`.
        """
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.signal(signal.SIGCONT)
            self.signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.kill()
        if self._reader is not None:
            # It has exited: its reader ends at the end of file.
            self._reader.join(timeout=STOP_TIMEOUT)
            self._reader = None
        if self.proc.stdout is not None and not self.proc.stdout.closed:
            self.proc.stdout.close()
        return self.proc.wait(timeout=STOP_TIMEOUT)


# --- latency ---------------------------------------------------------------------------


class Histogram:
    """Latencies in log-spaced buckets (1 % wide) from 1 µs: fixed size, exact maximum."""

    RATIO = math.log(1.01)

    def __init__(self) -> None:
        self.counts: collections.Counter[int] = collections.Counter()
        self.total = 0
        self.max = 0.0

    def add(self, seconds: float) -> None:
        """Record one latency."""
        bucket = max(0, int(math.log(max(seconds, 1e-6) / 1e-6) / self.RATIO))
        self.counts[bucket] += 1
        self.total += 1
        self.max = max(self.max, seconds)

    def merge(self, other: Histogram) -> None:
        """Add ``other``'s latencies to this one."""
        self.counts.update(other.counts)
        self.total += other.total
        self.max = max(self.max, other.max)

    def quantile(self, q: float) -> float:
        """The ``q`` quantile (upper edge of its bucket, capped at the maximum); 0 when empty."""
        if not self.total:
            return 0.0
        rank = q * self.total
        seen = 0
        for bucket in sorted(self.counts):
            seen += self.counts[bucket]
            if seen >= rank:
                return min(self.max, 1e-6 * math.exp((bucket + 1) * self.RATIO))
        return self.max


# --- the ledger ------------------------------------------------------------------------


class _Entry:
    __slots__ = ("addressed", "deliveries", "failed", "kind", "outcomes")

    def __init__(self, kind: str, addressed: str) -> None:
        self.kind = kind
        self.addressed = addressed
        self.outcomes = 0
        self.deliveries = 0
        self.failed = False


@dataclasses.dataclass
class Counts:
    """What the ledger found; everything but ``calls``, ``casts`` should be 0 with no faults."""

    calls: int = 0
    casts: int = 0
    results: int = 0
    errors: int = 0
    lost: int = 0
    duplicated: int = 0
    misrouted: int = 0
    error_types: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    delivered_by: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)

    def clean(self) -> bool:
        """No loss, duplicate, misroute or error."""
        return not (self.errors or self.lost or self.duplicated or self.misrouted)


class Ledger:
    """Per-id outcomes and deliveries; thread-safe. Ids are settled once complete."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._pending: dict[int, _Entry] = {}
        self._settled = bytearray()
        self.counts = Counts()

    def send(self, kind: str, addressed: str) -> int:
        """A new id for a message about to be sent (written before it leaves)."""
        with self._lock:
            msg_id = next(self._ids)
            self._pending[msg_id] = _Entry(kind, addressed)
            if kind == CALL:
                self.counts.calls += 1
            else:
                self.counts.casts += 1
            return msg_id

    def result(self, msg_id: int, value: Any) -> None:
        """Call ``msg_id`` returned ``value``."""
        with self._lock:
            entry = self._outcome(msg_id)
            if entry is None:
                return
            self.counts.results += 1
            if (
                not isinstance(value, dict)
                or value.get("id") != msg_id
                or value.get("payload") != payload(msg_id)
                or (entry.addressed and value.get("server") != entry.addressed)
            ):
                self.counts.misrouted += 1
            self._settle_if_done(msg_id, entry)

    def error(self, msg_id: int, exc: BaseException) -> None:
        """Call ``msg_id`` raised ``exc``."""
        with self._lock:
            entry = self._outcome(msg_id)
            if entry is None:
                return
            entry.failed = True
            self.counts.errors += 1
            self.counts.error_types[type(exc).__name__] += 1

    def delivered(self, server: str, msg_id: int, addressed: str) -> None:
        """``server`` served ``msg_id``, which carried ``addressed`` as its argument."""
        with self._lock:
            self.counts.delivered_by[server] += 1
            entry = self._pending.get(msg_id)
            if entry is None:
                if self._is_settled(msg_id):
                    self.counts.duplicated += 1
                else:
                    self.counts.misrouted += 1  # nobody sent that id
                return
            entry.deliveries += 1
            if entry.deliveries > 1:
                self.counts.duplicated += 1
            if addressed != entry.addressed or (entry.addressed and server != entry.addressed):
                self.counts.misrouted += 1
            self._settle_if_done(msg_id, entry)

    def undelivered(self) -> int:
        """How many ids still wait for a delivery (or an outcome)."""
        with self._lock:
            return sum(1 for e in self._pending.values() if not e.failed)

    def close(self) -> Counts:
        """Count what is still open as lost and return the counts."""
        with self._lock:
            for entry in self._pending.values():
                if entry.kind == CAST or entry.outcomes == 0:
                    self.counts.lost += 1
                elif not entry.failed and entry.deliveries == 0:
                    self.counts.lost += 1  # a result nobody recorded serving
            self._pending.clear()
            return self.counts

    def _outcome(self, msg_id: int) -> _Entry | None:
        entry = self._pending.get(msg_id)
        if entry is None:
            if self._is_settled(msg_id):
                self.counts.duplicated += 1
            else:
                self.counts.misrouted += 1
            return None
        entry.outcomes += 1
        if entry.outcomes > 1:
            self.counts.duplicated += 1
        return entry

    def _settle_if_done(self, msg_id: int, entry: _Entry) -> None:
        if entry.deliveries and (entry.kind == CAST or entry.outcomes):
            del self._pending[msg_id]
            if msg_id >= len(self._settled):
                self._settled.extend(bytes(max(msg_id + 1 - len(self._settled), 65536)))
            self._settled[msg_id] = 1

    def _is_settled(self, msg_id: int) -> bool:
        return msg_id < len(self._settled) and self._settled[msg_id] == 1


def payload(msg_id: int) -> str:
    """The payload call ``msg_id`` carries (and must get back)."""
    return f"p{msg_id}"


# --- RSS and file descriptors ----------------------------------------------------------


def rss_and_fds(pid: int) -> tuple[int, int]:
    """Resident set size (bytes) and number of open descriptors of ``pid`` (Linux /proc)."""
    with Path(f"/proc/{pid}/statm").open() as statm:
        resident = int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    return resident, sum(1 for _ in Path(f"/proc/{pid}/fd").iterdir())


@dataclasses.dataclass
class Trend:
    """One process's RSS and fds: medians of the first and last thirds after warm-up."""

    name: str
    samples: int
    rss_first: float
    rss_last: float
    fds_first: float
    fds_last: float
    rss_limit: float
    fds_limit: float

    @property
    def flat(self) -> bool:
        """Neither grew past its tolerance."""
        return self.rss_last <= self.rss_limit and self.fds_last <= self.fds_limit


class Sampler:
    """Samples RSS and fds of named processes every ``interval`` seconds in a thread."""

    def __init__(self, pids: dict[str, int], interval: float) -> None:
        self.pids = dict(pids)
        self.interval = interval
        self.samples: dict[str, list[tuple[int, int]]] = {name: [] for name in pids}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ledger-sampler", daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            for name, pid in self.pids.items():
                try:
                    self.samples[name].append(rss_and_fds(pid))
                except OSError:
                    continue  # it exited: nothing to sample

    def trends(
        self, *, warmup: float = 0.25, rss_ratio: float = 0.15, rss_slack: float = 8 * MIB
    ) -> list[Trend]:
        """Per process: the first third vs the last third of the samples after ``warmup``.

        Medians, so a few noisy samples do not decide; RSS may grow by
        ``rss_ratio`` plus ``rss_slack`` (allocator and ZeroMQ buffers settle),
        descriptors by two.
        """
        trends = []
        for name, samples in self.samples.items():
            kept = samples[int(len(samples) * warmup) :]
            third = len(kept) // 3
            if third < 2:
                continue
            first, last = kept[:third], kept[-third:]
            rss_first = statistics.median(s[0] for s in first)
            fds_first = statistics.median(s[1] for s in first)
            trends.append(
                Trend(
                    name,
                    len(kept),
                    rss_first,
                    statistics.median(s[0] for s in last),
                    fds_first,
                    statistics.median(s[1] for s in last),
                    rss_first * (1 + rss_ratio) + rss_slack,
                    fds_first + 2,
                )
            )
        return trends


# --- the load --------------------------------------------------------------------------


@dataclasses.dataclass
class Report:
    """One run: the ledger's counts, throughput, latency and resource trends."""

    threads: int
    servers: int
    elapsed: float
    counts: Counts
    latency: Histogram
    trends: list[Trend]
    transport_stats: dict[str, int]

    @property
    def calls_per_s(self) -> float:
        """Calls (not casts) completed per second of load."""
        return self.counts.results / self.elapsed if self.elapsed else 0.0

    @property
    def flat(self) -> bool:
        """Every sampled process stayed flat."""
        return all(t.flat for t in self.trends)

    def ok(self) -> bool:
        """Nothing lost, duplicated, misrouted or failed, and nothing grew."""
        return self.counts.clean() and self.flat

    def table(self) -> str:
        """The report as a printable table."""
        c = self.counts
        lat = self.latency
        lines = [
            f"ledger: {self.threads} threads, {self.servers} servers, {self.elapsed:.1f} s",
            f"  {'calls':<12}{c.calls:>10}   {'casts':<12}{c.casts:>10}",
            (
                f"  {'results':<12}{c.results:>10}   {'errors':<12}{c.errors:>10}"
                + (f"  {dict(c.error_types)}" if c.error_types else "")
            ),
            (
                f"  {'lost':<12}{c.lost:>10}   {'duplicated':<12}{c.duplicated:>10}"
                f"   {'misrouted':<12}{c.misrouted:>6}"
            ),
            (
                "  delivered by: "
                + ", ".join(f"{name} {n}" for name, n in sorted(c.delivered_by.items()))
            ),
            (
                f"  calls/s {self.calls_per_s:,.0f}   latency p50 {lat.quantile(0.5) * 1e3:.2f} ms"
                f"   p99 {lat.quantile(0.99) * 1e3:.2f} ms   max {lat.max * 1e3:.2f} ms"
            ),
            f"  client transport stats: {self.transport_stats or '{}'}",
            (
                f"  {'process':<10}{'samples':>8}{'RSS first':>12}{'RSS last':>11}{'limit':>9}"
                f"{'fds first':>11}{'fds last':>10}{'limit':>7}  verdict"
            ),
        ]
        lines.extend(
            f"  {t.name:<10}{t.samples:>8}{t.rss_first / MIB:>10.1f}MB{t.rss_last / MIB:>9.1f}MB"
            f"{t.rss_limit / MIB:>7.1f}MB{t.fds_first:>11.0f}{t.fds_last:>10.0f}{t.fds_limit:>7.0f}"
            f"  {'flat' if t.flat else 'GREW'}"
            for t in self.trends
        )
        lines.append(f"  verdict: {'OK' if self.ok() else 'FAILED'}")
        return "\n".join(lines)


class _Drainer:
    """Moves the servers' delivery records into the ledger, in a thread and at the end."""

    def __init__(self, transport: za.Transport, names: Sequence[str], ledger: Ledger) -> None:
        base = za.RPCClient(transport, za.Target(TOPIC), timeout=30.0)
        self._clients = {name: base.prepare(server=name) for name in names}
        self._ledger = ledger
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ledger-drainer", daemon=True)
        self.failure: BaseException | None = None

    def drain_once(self) -> int:
        """Drain every server once; return how many records came in."""
        moved = 0
        for name, client in self._clients.items():
            while True:
                records = client.call("drain", limit=DRAIN_CHUNK)
                for msg_id, addressed in records:
                    self._ledger.delivered(name, msg_id, addressed)
                moved += len(records)
                if len(records) < DRAIN_CHUNK:
                    break
        return moved

    def _run(self) -> None:
        try:
            while not self._stop.wait(0.2):
                self.drain_once()
        except BaseException as exc:  # noqa: BLE001 - reported by finish()
            self.failure = exc

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(timeout=60)

    def finish(self, timeout: float) -> None:
        """Drain until every id is delivered or ``timeout`` passes (what is left is lost)."""
        if self.failure is not None:
            raise self.failure
        deadline = time.monotonic() + timeout
        while True:
            self.drain_once()
            if not self._ledger.undelivered() or time.monotonic() > deadline:
                return
            time.sleep(0.05)


def _worker(
    index: int,
    transport: za.Transport,
    names: Sequence[str],
    ledger: Ledger,
    *,
    calls: int | None,
    until: float | None,
    cast_every: int,
    direct_every: int,
    timeout: float,
) -> Histogram:
    hist = Histogram()
    topic = za.RPCClient(transport, za.Target(TOPIC), timeout=timeout)
    direct = {name: topic.prepare(server=name) for name in names}
    seq = 0
    while (calls is None or seq < calls) and (until is None or time.monotonic() < until):
        seq += 1
        addressed = names[(index + seq) % len(names)] if seq % direct_every == 0 else ""
        client = direct[addressed] if addressed else topic
        msg_id = ledger.send(CALL, addressed)
        started = time.perf_counter()
        try:
            value = client.call("work", id=msg_id, addressed=addressed, payload=payload(msg_id))
        except Exception as exc:  # noqa: BLE001 - every outcome goes into the ledger
            ledger.error(msg_id, exc)
        else:
            hist.add(time.perf_counter() - started)
            ledger.result(msg_id, value)
        if seq % cast_every == 0:
            cast_id = ledger.send(CAST, addressed)
            client.cast("note", id=cast_id, addressed=addressed)
    return hist


@dataclasses.dataclass
class Load:
    """What to run: ``calls`` per thread, or for ``duration`` seconds."""

    threads: int = 8
    calls: int | None = 2000
    duration: float | None = None
    cast_every: int = 4
    direct_every: int = 2
    timeout: float = 30.0
    sample_interval: float = 0.25
    deliver_timeout: float = 30.0


def run(url: str, servers: Sequence[ServerProcess], load: Load) -> Report:
    """Run ``load`` against ``servers`` (started, on ``url``) and return the report."""
    names = [s.name for s in servers]
    ledger = Ledger()
    pids = {"client": os.getpid(), **{s.name: s.pid for s in servers}}
    with za.Transport.from_url(url) as transport:
        # Warm the routes so the first calls do not all miss the cache at once.
        warm = za.RPCClient(transport, za.Target(TOPIC), timeout=load.timeout)
        for name in names:
            warm.prepare(server=name).call("whoami")
        hist = Histogram()
        with (
            Sampler(pids, load.sample_interval) as sampler,
            _Drainer(transport, names, ledger) as drainer,
        ):
            started = time.monotonic()
            until = None if load.duration is None else started + load.duration
            results: list[Histogram] = []
            errors: list[BaseException] = []

            def work(index: int) -> None:
                try:
                    results.append(
                        _worker(
                            index,
                            transport,
                            names,
                            ledger,
                            calls=load.calls,
                            until=until,
                            cast_every=load.cast_every,
                            direct_every=load.direct_every,
                            timeout=load.timeout,
                        )
                    )
                except BaseException as exc:  # noqa: BLE001 - re-raised below
                    errors.append(exc)

            threads = [
                threading.Thread(target=work, args=(i,), name=f"ledger-{i}", daemon=True)
                for i in range(load.threads)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            elapsed = time.monotonic() - started
            if errors:
                raise errors[0]
            for part in results:
                hist.merge(part)
        drainer.finish(load.deliver_timeout)
        counts = ledger.close()
        stats = dict(transport.stats.snapshot())
    return Report(load.threads, len(servers), elapsed, counts, hist, sampler.trends(), stats)


def start_servers(url: str, count: int) -> list[ServerProcess]:
    """Start ``count`` ledger servers ``s0``, ``s1``... on ``url``; stop them all if one fails."""
    servers: list[ServerProcess] = []
    try:
        for index in range(count):
            server = ServerProcess(url, f"s{index}")
            servers.append(server)
            server.start()
    except BaseException:
        stop_servers(servers)
        raise
    return servers


def stop_servers(servers: Sequence[ServerProcess]) -> None:
    """Stop every server (SIGTERM, then SIGKILL)."""
    for server in servers:
        server.stop()


@contextlib.contextmanager
def running_servers(url: str, count: int) -> Iterator[list[ServerProcess]]:
    """``count`` ledger servers on ``url`` (`start_servers`), stopped after."""
    servers = start_servers(url, count)
    try:
        yield servers
    finally:
        stop_servers(servers)


@contextlib.contextmanager
def _progress(duration: float | None, every: float = 10.0) -> Iterator[None]:
    """Say on stderr every ``every`` seconds how long the soak has run and has left."""
    stop = threading.Event()
    started = time.monotonic()

    def tick() -> None:
        while not stop.wait(every):
            ran = time.monotonic() - started
            left = "" if duration is None else f", about {max(0.0, duration - ran):.0f} s left"
            print(f"soak: {ran:.0f} s{left}", file=sys.stderr, flush=True)

    thread = threading.Thread(target=tick, name="soak-progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=every + 1)
        print(f"soak: done in {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    """``make soak``: run the ledger and print its table; exit 1 unless it is clean and flat."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--threads", type=int, default=64)
    parser.add_argument("--servers", type=int, default=3)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load")
    parser.add_argument("--calls", type=int, default=None, help="calls per thread instead")
    parser.add_argument("--sample-interval", type=float, default=1.0)
    args = parser.parse_args(argv)
    load = Load(
        threads=args.threads,
        calls=args.calls,
        duration=None if args.calls else args.duration,
        sample_interval=args.sample_interval,
    )
    with tempfile.TemporaryDirectory(prefix="zmqactors-soak-") as directory:
        url = f"zmq+file://{directory}/mm"
        with running_servers(url, args.servers) as servers, _progress(load.duration):
            report = run(url, servers, load)
    print(report.table())
    return 0 if report.ok() else 1


if __name__ == "__main__":
    sys.exit(main())
