"""A rolling restart under load: the harness of issue #20's test (and its before/after figures).

Three ledger servers serve a topic; client threads call ``work`` in a loop
(topic calls: any server; every fifth request an acknowledged cast of
``note`` instead); each server in turn gets SIGTERM (a graceful stop)
and is replaced by a new process under the same name. Every call's outcome
and duration is kept, so the caller can assert that none failed and none was
slow, and print the figures.

Run as a script for the figures: ``python tests/reliability/rolling.py [--redis URL]``.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Self

import zmqactors as za

if TYPE_CHECKING:
    from collections.abc import Callable

    from zmqactors_reliability_ledger import ServerProcess

TOPIC = "rolling"
CALL_TIMEOUT = 5.0
# Every ACK_EVERY-th request of a thread is an acknowledged cast, the others calls.
ACK_EVERY = 5


@dataclasses.dataclass
class Outcome:
    """What the client threads saw."""

    calls: int = 0
    failures: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    examples: list[str] = dataclasses.field(default_factory=list)
    slowest: float = 0.0
    retried: int = 0

    def line(self) -> str:
        kinds = ", ".join(f"{k} {v}" for k, v in sorted(self.failures.items())) or "none"
        return (
            f"calls {self.calls}, failed {sum(self.failures.values())} ({kinds}), "
            f"retried_not_run {self.retried}, slowest {self.slowest * 1000:.0f} ms"
        )


class Callers:
    """``threads`` threads calling ``work`` on the topic until stopped."""

    def __init__(self, client: za.RPCClient, threads: int) -> None:
        self._client = client
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.outcome = Outcome()
        self._threads = [
            threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(threads)
        ]

    def _run(self, index: int) -> None:
        n = 0
        acked = self._client.prepare(ack=True)
        while not self._stop.is_set():
            n += 1
            started = time.monotonic()
            error = None
            try:
                if n % ACK_EVERY:
                    self._client.call("work", id=index * 10_000_000 + n, addressed="", payload="x")
                else:
                    # An acknowledged cast: returns once a server ran it.
                    acked.cast("note", id=index * 10_000_000 + n, addressed="")
            except za.MessagingError as exc:
                error = exc
            took = time.monotonic() - started
            with self._lock:
                self.outcome.calls += 1
                self.outcome.slowest = max(self.outcome.slowest, took)
                if error is not None:
                    self.outcome.failures[type(error).__name__] += 1
                    if len(self.outcome.examples) < 5:
                        self.outcome.examples.append(f"{type(error).__name__}: {error}")

    def count(self) -> int:
        with self._lock:
            return self.outcome.calls

    def __enter__(self) -> Self:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=CALL_TIMEOUT + 5)


def rolling_restart(
    start: Callable[[str], ServerProcess],
    client_url: str,
    *,
    servers: int = 3,
    threads: int = 4,
    rounds: int = 1,
    pause: float = 0.5,
    wait_until: Callable[..., None],
) -> Outcome:
    """Restart every server ``rounds`` times under load; what the callers saw."""
    running = {name: start(name) for name in (f"roll-{i}" for i in range(servers))}
    with za.Transport.from_url(client_url) as transport:
        client = za.RPCClient(transport, za.Target(TOPIC), timeout=CALL_TIMEOUT)
        with Callers(client, threads) as callers:
            wait_until(lambda: callers.count() >= 200, "200 calls before the restarts", timeout=30)
            for _ in range(rounds):
                for name in list(running):
                    before = callers.count()
                    running[name].stop()
                    running[name] = start(name)
                    # Calls flow again before the next server goes (and at
                    # least `pause` seconds pass, as an operator's script does).
                    paused = time.monotonic() + pause
                    wait_until(
                        lambda b=before, p=paused: (
                            callers.count() >= b + 50 and time.monotonic() >= p
                        ),
                        "calls after a restart",
                        timeout=30,
                    )
        callers.outcome.retried = transport.stats.snapshot().get("retried_not_run", 0)
    for server in running.values():
        server.stop()
    return callers.outcome


def _main() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from tests.helpers import wait_until  # noqa: PLC0415 - run as a script
    from tests.reliability import ledger  # noqa: PLC0415 - run as a script

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", help="matchmaker URL (default: a fresh file matchmaker)")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.url or f"zmq+file://{tmp}/mm"
        outcome = rolling_restart(
            lambda name: ledger.ServerProcess(url, name, topic=TOPIC).start(),
            url,
            rounds=args.rounds,
            wait_until=wait_until,
        )
    print(outcome.line())
    for example in outcome.examples:
        print("  ", example)


if __name__ == "__main__":
    _main()
