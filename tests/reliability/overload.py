"""The overload soak (issue #19, item 9): a well-behaved client next to three adversaries.

One ledger server process (``ledger_server.py``, ``--executor-size 4``) on
real TCP. A well-behaved client in this process makes paced calls and
casts, each written in the ledger (`ledger.Ledger`), first alone
(*unloaded*), then while, each in its own process (``overload_peers.py``):

- a **greedy** client keeps hundreds of slow calls outstanding;
- a **bomb** sender sends decoding bombs (1 MiB of empty maps; every tenth
  100,000 arrays of ten) from a raw DEALER;
- a thousand **idle** connections (raw DEALERs) sit on the server's port.

It prints the well-behaved client's p50/p99 unloaded and loaded and their
ratio (the issue's target: loaded p99 within 3x of unloaded), the server's
RSS through both phases, what each adversary got, and the ledger (nothing
acknowledged may be lost, duplicated or misrouted). Exit status 0 when all
three targets are met.

``python tests/reliability/overload.py --unloaded 10 --loaded 30`` (``make
soak-overload``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import selectors
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import zmqactors as za

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ledger as ledger_module
from ledger import (
    CALL,
    CAST,
    MIB,
    TOPIC,
    Histogram,
    Ledger,
    Sampler,
    ServerProcess,
    payload,
    rss_and_fds,
)

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

HERE = Path(__file__).resolve().parent
PEERS = HERE / "overload_peers.py"
READY_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0
# The target: the well-behaved client's loaded p99 within 3x of unloaded.
TARGET_RATIO = 3.0


class Peer:
    """One ``overload_peers.py`` process: started until ``ready``, stopped into a summary."""

    def __init__(self, *args: str) -> None:
        self.args = args
        self.proc: subprocess.Popen[bytes] | None = None
        self.output = b""
        self.summary: dict[str, object] = {}

    def start(self) -> Peer:
        self.proc = subprocess.Popen(
            [sys.executable, str(PEERS), *self.args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + READY_TIMEOUT
        with selectors.DefaultSelector() as selector:
            selector.register(fd, selectors.EVENT_READ)
            while b"ready\n" not in self.output:
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    self.stop()
                    msg = f"peer {self.args[:2]} not ready: {self.output[-500:]!r}"
                    raise RuntimeError(msg)
                if selector.select(timeout=min(left, 0.1)):
                    self.output += os.read(fd, 65536)
        return self

    def stop(self) -> dict[str, object]:
        """SIGTERM, SIGKILL after `STOP_TIMEOUT`; its JSON summary (empty if it had none)."""
        if self.proc is None:
            return self.summary
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rest, _ = self.proc.communicate(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rest, _ = self.proc.communicate(timeout=STOP_TIMEOUT)
        self.output += rest or b""
        for line in reversed(self.output.splitlines()):
            if line.startswith(b"{"):
                self.summary = json.loads(line)
                break
        self.proc = None
        return self.summary


def well_behaved(
    transport: za.Transport, book: Ledger, until: float, interval: float, timeout: float
) -> Histogram:
    """Paced calls (a cast after every fourth) until ``until``; their latencies."""
    client = za.RPCClient(transport, za.Target(TOPIC), timeout=timeout)
    hist = Histogram()
    seq = 0
    pace = threading.Event()  # never set: its wait() paces the load
    next_at = time.monotonic()
    while time.monotonic() < until:
        seq += 1
        msg_id = book.send(CALL, "")
        started = time.perf_counter()
        try:
            value = client.call("work", id=msg_id, addressed="", payload=payload(msg_id))
        except Exception as exc:  # noqa: BLE001 - every outcome goes into the ledger
            book.error(msg_id, exc)
        else:
            hist.add(time.perf_counter() - started)
            book.result(msg_id, value)
        if seq % 4 == 0:
            client.cast("note", id=book.send(CAST, ""), addressed="")
        next_at += interval
        pace.wait(max(0.0, next_at - time.monotonic()))
    return hist


@contextlib.contextmanager
def adversaries(url: str, server: ServerProcess, args: argparse.Namespace) -> Iterator[list[Peer]]:
    """The idle connections, the greedy client and the bomb sender, running; stopped after."""
    peers: list[Peer] = []
    try:
        fds_before = rss_and_fds(server.pid)[1]
        peers.append(
            Peer("--mode", "idle", "--address", server.address, "--count", str(args.idle)).start()
        )
        # Connected when the server holds a descriptor for (nearly) each.
        deadline = time.monotonic() + READY_TIMEOUT
        while rss_and_fds(server.pid)[1] < fds_before + args.idle * 0.95:
            if time.monotonic() > deadline:
                msg = f"the {args.idle} idle connections did not reach the server"
                raise RuntimeError(msg)
            threading.Event().wait(0.1)
        peers.append(
            Peer(
                "--mode", "greedy", "--url", url, "--outstanding", str(args.greedy),
                "--seconds", str(args.slow),
            ).start()
        )  # fmt: skip
        peers.append(
            Peer(
                "--mode", "bombs", "--address", server.address, "--rate", str(args.bomb_rate)
            ).start()
        )
        yield peers
    finally:
        for peer in reversed(peers):
            peer.stop()


def rss_phases(
    samples: Sequence[tuple[float, int]], loaded_at: float, ended_at: float
) -> dict[str, float]:
    """Server RSS in MiB: the last unloaded sample; the max and thirds of the loaded ones."""
    before = [r for t, r in samples if t < loaded_at]
    during = [r for t, r in samples if loaded_at <= t <= ended_at]
    third = max(1, len(during) // 3)
    return {
        "unloaded": (before[-1] if before else 0) / MIB,
        "loaded max": (max(during) if during else 0) / MIB,
        "loaded first third": (sum(during[:third]) / third if during else 0) / MIB,
        "loaded last third": (sum(during[-third:]) / third if during else 0) / MIB,
    }


class RssLog(Sampler):
    """The server's RSS with the time of each sample (the ledger's Sampler keeps no times)."""

    def __init__(self, pid: int, interval: float) -> None:
        super().__init__({"server": pid}, interval)
        self.timed: list[tuple[float, int]] = []

    def _run(self) -> None:
        pid = self.pids["server"]
        while not self._stop.wait(self.interval):
            with contextlib.suppress(OSError):
                self.timed.append((time.monotonic(), rss_and_fds(pid)[0]))


def main(argv: Sequence[str] | None = None) -> int:
    """``make soak-overload``: run both phases, print the figures; 0 when every target is met."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--unloaded", type=float, default=10.0, help="seconds alone")
    parser.add_argument("--loaded", type=float, default=30.0, help="seconds under attack")
    parser.add_argument("--interval", type=float, default=0.01, help="between well-behaved calls")
    parser.add_argument("--timeout", type=float, default=10.0, help="of a well-behaved call")
    parser.add_argument("--executor-size", type=int, default=4)
    parser.add_argument("--greedy", type=int, default=300, help="slow calls outstanding")
    parser.add_argument("--slow", type=float, default=0.02, help="seconds per slow call")
    parser.add_argument("--bomb-rate", type=float, default=10.0, help="bombs per second")
    parser.add_argument("--idle", type=int, default=1000, help="idle connections")
    args = parser.parse_args(argv)
    book = Ledger()
    with tempfile.TemporaryDirectory(prefix="zmqactors-overload-") as directory:
        url = f"zmq+file://{directory}/mm"
        server = ServerProcess(url, "s0", executor_size=args.executor_size).start()
        try:
            with za.Transport.from_url(url) as transport:
                za.RPCClient(transport, za.Target(TOPIC), timeout=10).call("whoami")
                with (
                    RssLog(server.pid, 0.25) as rss,
                    ledger_module._Drainer(transport, ["s0"], book) as drainer,
                ):
                    unloaded = well_behaved(
                        transport,
                        book,
                        time.monotonic() + args.unloaded,
                        args.interval,
                        args.timeout,
                    )
                    with adversaries(url, server, args) as peers:
                        loaded_at = time.monotonic()
                        loaded = well_behaved(
                            transport, book, loaded_at + args.loaded, args.interval, args.timeout
                        )
                        ended_at = time.monotonic()
                    summaries = [peer.summary for peer in peers]
                drainer.finish(30.0)
                stats = dict(transport.stats.snapshot())
        finally:
            server.stop()
    counts = book.close()
    ratio = loaded.quantile(0.99) / unloaded.quantile(0.99) if unloaded.total else float("inf")
    memory = rss_phases(rss.timed, loaded_at, ended_at)
    # Bounded: what the server holds at the end of the attack is not growing
    # past what it held in its first third, beyond allocator settling.
    rss_bounded = memory["loaded last third"] <= memory["loaded first third"] * 1.15 + 8
    ledger_clean = not (counts.lost or counts.duplicated or counts.misrouted)
    lines = [
        (
            f"overload soak: 1 server (executor_size {args.executor_size}), "
            f"{args.unloaded:.0f} s unloaded, {args.loaded:.0f} s loaded"
        ),
        (
            f"  adversaries: {args.greedy} slow calls ({args.slow * 1e3:.0f} ms) outstanding, "
            f"{args.bomb_rate:.0f} bombs/s, {args.idle} idle connections"
        ),
        f"  {'well-behaved':<14}{'calls':>7}{'p50 ms':>10}{'p99 ms':>10}{'max ms':>10}",
    ]
    for name, hist in (("unloaded", unloaded), ("loaded", loaded)):
        lines.append(
            f"  {name:<14}{hist.total:>7}{hist.quantile(0.5) * 1e3:>10.2f}"
            f"{hist.quantile(0.99) * 1e3:>10.2f}{hist.max * 1e3:>10.2f}"
        )
    verdict_ratio = "met" if ratio <= TARGET_RATIO else "MISSED"
    rss_text = ", ".join(f"{k} {v:.1f}" for k, v in memory.items())
    lines += [
        f"  p99 loaded / unloaded: {ratio:.1f}x (target <= {TARGET_RATIO:.0f}x): {verdict_ratio}",
        f"  server RSS MiB: {rss_text}: {'bounded' if rss_bounded else 'GREW'}",
        (
            f"  ledger: calls {counts.calls} casts {counts.casts} results {counts.results} "
            f"errors {counts.errors} {dict(counts.error_types) or ''}"
        ),
        (
            f"  ledger: lost {counts.lost} duplicated {counts.duplicated} "
            f"misrouted {counts.misrouted}: {'clean' if ledger_clean else 'FAILED'}"
        ),
        f"  client stats: {stats}",
        *(f"  {s.get('mode', '?')}: {s}" for s in summaries),
    ]
    ok = ratio <= TARGET_RATIO and rss_bounded and ledger_clean
    lines.append(f"  verdict: {'OK' if ok else 'FAILED'}")
    print("\n".join(lines))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
