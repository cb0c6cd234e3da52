"""How fast discovery follows servers, per matchmaker backend (``make bench-discovery``).

For each backend (file, redis, etcd), with real processes: RPC servers in
child processes (``tests/integration/serve.py``), one client in this
process calling ``whoami`` in a loop, and the store (redis-server, an etcd
member) in its own process. Printed per backend:

- start: from a server's ``start()`` returning (its ``ready`` line) to the
  first call of the client reaching it;
- stop: from SIGTERM (the server's ``stop()``) to the last call reaching it;
- kill: from SIGKILL to the last failed call (how long the client kept
  trying the dead server), and how many calls failed;
- lookup: one backend lookup, p50 and p99 over 200;
- outage (redis, etcd): calls served and failed while the store is down for
  3 s; after it is back, "start" again for a server started then.

Backends whose store is not installed are skipped. Run from the checkout:
``python benchmarks/discovery.py [--backends file,redis,etcd]``.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import zmqactors as za  # noqa: E402 - after the checkout is on sys.path
from tests import etcd_process  # noqa: E402
from tests.helpers import free_port  # noqa: E402
from zmqactors.matchmaker import matchmaker_for  # noqa: E402
from zmqactors.options import parse_url  # noqa: E402
from zmqactors.topics import matchmaker_key  # noqa: E402

if TYPE_CHECKING:
    from collections.abc import Callable

SERVE = ROOT / "tests" / "integration" / "serve.py"
TOPIC = "bench.discovery"
TTL = 3.0
CALL_TIMEOUT = 2.0
WAIT = 30.0


class Server:
    """One server process; ``ready_at`` is when its ``start()`` had returned."""

    def __init__(self, url: str, name: str) -> None:
        self.name = name
        self.proc = subprocess.Popen(  # noqa: S603 - our own script
            [sys.executable, str(SERVE), "--url", url, "--topic", TOPIC, "--server", name],
            stdout=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        line = self.proc.stdout.readline() if self.proc.stdout is not None else ""
        self.ready_at = time.monotonic()
        if not line.startswith("ready "):
            msg = f"server {name} did not start: {line!r}"
            raise RuntimeError(msg)

    def stop(self, sig: int = signal.SIGTERM) -> float:
        """Send ``sig``; when it was sent (monotonic). Reaps the process."""
        sent = time.monotonic()
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        self.proc.wait(timeout=WAIT)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        return sent


class Caller:
    """Calls ``whoami`` in a loop from a thread; records (when, server or None) per call."""

    def __init__(self, transport: za.Transport) -> None:
        self._client = za.RPCClient(transport, za.Target(TOPIC), timeout=CALL_TIMEOUT)
        self.calls: list[tuple[float, str | None]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                name: str | None = self._client.call("whoami")
            except za.MessagingError:
                name = None
                time.sleep(0.001)  # a benchmark pacing its failures, not a synchronisation
            self.calls.append((time.monotonic(), name))

    def first(self, name: str, after: float) -> float | None:
        """When a call first reached ``name`` at or after ``after``; None if none did."""
        return next((t for t, n in list(self.calls) if n == name and t >= after), None)

    def last(self, name: str | None) -> float | None:
        """When a call last reached ``name`` (None: last failed); None if none did."""
        return next((t for t, n in reversed(list(self.calls)) if n == name), None)

    def since(self, after: float) -> list[str | None]:
        """Who answered each call since ``after`` (None: it failed)."""
        return [n for t, n in list(self.calls) if t >= after]

    def close(self) -> None:
        """Stop calling."""
        self._stop.set()
        self._thread.join(timeout=WAIT)


def wait_for(predicate: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    """Poll ``predicate`` until true; `RuntimeError` naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            msg = f"timed out waiting for {what}"
            raise RuntimeError(msg)
        time.sleep(0.005)


def ms(seconds: float | None) -> str:
    """``seconds`` in whole milliseconds, ``-`` for None."""
    return "-" if seconds is None else f"{seconds * 1000:.0f} ms"


class Store:
    """The backend's store process (none for files): start, kill, restart."""

    def __init__(self, kind: str, tmp: Path) -> None:
        self.kind = kind
        self.tmp = tmp
        self.url = ""
        self._redis: subprocess.Popen[bytes] | None = None
        self._etcd: etcd_process.EtcdProcess | None = None
        self._port = 0

    def start(self) -> None:
        """Start the store (again, on the same port, after `kill`), answering when this returns."""
        if self.kind == "file":
            self.url = f"zmq+file://{self.tmp / 'mm'}"
        elif self.kind == "redis":
            self._port = self._port or free_port()
            self._redis = subprocess.Popen(  # noqa: S603 - redis-server from PATH
                [
                    shutil.which("redis-server") or "redis-server",
                    *("--port", str(self._port), "--bind", "127.0.0.1"),
                    *("--save", "", "--appendonly", "no"),
                ],
                stdout=subprocess.DEVNULL,
                stdin=subprocess.DEVNULL,
            )
            self.url = f"zmq+redis://127.0.0.1:{self._port}/0"
            backend = matchmaker_for(parse_url(self.url))
            wait_for(lambda: _answers(backend), "redis-server")
            backend.close()
        elif self._etcd is None:
            self._etcd = etcd_process.start_member(self.tmp / "etcd")
            self.url = self._etcd.url
        else:
            self._etcd.start()

    def kill(self) -> None:
        """SIGKILL the store."""
        if self._redis is not None:
            self._redis.kill()
            self._redis.wait(timeout=WAIT)
        if self._etcd is not None:
            self._etcd.kill()

    def close(self) -> None:
        """Stop the store for good."""
        self.kill()


def _answers(backend: object) -> bool:
    try:
        backend.lookup("x/y")  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001 - not up yet
        return False
    return True


def measure(kind: str) -> dict[str, str]:  # noqa: PLR0915 - one scenario, in order
    """Run the scenarios on backend ``kind``; the figures, as text."""
    row: dict[str, str] = {"backend": kind}
    with tempfile.TemporaryDirectory(prefix="zmqactors-discovery-") as tmp:
        store = Store(kind, Path(tmp))
        store.start()
        url = f"{store.url}?matchmaker_ttl={TTL}"
        servers: list[Server] = []
        transport = za.Transport.from_url(url)
        caller: Caller | None = None
        try:
            servers.append(Server(url, "s1"))
            caller = Caller(transport)
            wait_for(lambda: caller.first("s1", 0.0) is not None, "calls reaching s1")
            # start: a new server, to the client's first call reaching it.
            s2 = Server(url, "s2")
            servers.append(s2)
            wait_for(lambda: caller.first("s2", 0.0) is not None, "calls reaching s2")
            first = caller.first("s2", 0.0)
            row["start"] = ms(None if first is None else first - s2.ready_at)
            # stop: SIGTERM (stop()) to the last call reaching it.
            stopped = s2.stop()
            time.sleep(1.0)  # to see calls after the stop, if any
            last = caller.last("s2")
            row["stop"] = ms(None if last is None else max(0.0, last - stopped))
            # kill: SIGKILL to the last failed call.
            s3 = Server(url, "s3")
            servers.append(s3)
            wait_for(lambda: caller.first("s3", 0.0) is not None, "calls reaching s3")
            killed = s3.stop(signal.SIGKILL)
            time.sleep(TTL + 2.0)
            failed = [n for n in caller.since(killed) if n is None]
            last_failure = caller.last(None)
            row["kill"] = ms(
                None if last_failure is None or last_failure < killed else last_failure - killed
            )
            row["kill failures"] = str(len(failed))
            # lookup latency, straight on the backend.
            backend = matchmaker_for(parse_url(url))
            key = matchmaker_key(za.Target(TOPIC))
            samples = []
            for _ in range(200):
                began = time.perf_counter()
                backend.lookup(key)
                samples.append(time.perf_counter() - began)
            backend.close()
            samples.sort()
            row["lookup p50"] = f"{statistics.median(samples) * 1e6:.0f} µs"
            row["lookup p99"] = f"{samples[int(len(samples) * 0.99) - 1] * 1e6:.0f} µs"
            if kind != "file":
                outage_at = time.monotonic()
                store.kill()
                time.sleep(3.0)
                during = caller.since(outage_at)
                row["outage ok/failed"] = (
                    f"{sum(n is not None for n in during)}/{sum(n is None for n in during)}"
                )
                store.start()
                s4 = Server(url, "s4")
                servers.append(s4)
                wait_for(lambda: caller.first("s4", 0.0) is not None, "calls reaching s4")
                reached = caller.first("s4", 0.0)
                row["start after restart"] = ms(None if reached is None else reached - s4.ready_at)
        finally:
            if caller is not None:
                caller.close()
            for server in servers:
                server.stop()
            transport.close()
            store.close()
    return row


def main() -> None:
    """Measure the backends named on the command line; print one table."""
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument("--backends", default="file,redis,etcd")
    args = parser.parse_args()
    rows = []
    for kind in args.backends.split(","):
        if kind == "redis" and shutil.which("redis-server") is None:
            print("redis: skipped, no redis-server", file=sys.stderr)
            continue
        if kind == "etcd" and shutil.which("etcd") is None:
            print("etcd: skipped, no etcd", file=sys.stderr)
            continue
        if kind == "etcd" and not _has_etcd():
            print("etcd: skipped, this zmqactors has no etcd matchmaker", file=sys.stderr)
            continue
        print(f"measuring {kind} ...", file=sys.stderr, flush=True)
        rows.append(measure(kind))
    columns = list(dict.fromkeys(c for row in rows for c in row))
    print(" | ".join(columns))
    print(" | ".join("---" for _ in columns))
    for row in rows:
        print(" | ".join(row.get(c, "-") for c in columns))


def _has_etcd() -> bool:
    try:
        parse_url("zmq+etcd://127.0.0.1:1")
    except za.ConfigurationError:
        return False
    return True


if __name__ == "__main__":
    main()
