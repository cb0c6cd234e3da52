"""A threaded daemon: a pool of worker threads calls while the same process serves.

    python examples/threaded_daemon.py [--url zmq://] [--seconds 10] [--workers 8]

It serves a small endpoint on topic ``daemon`` and runs ``--workers`` threads
that call it (and cast to it) in a loop: every daemon of the topic on this
host answers, this one included, so start several to see them share the
work. It stops after ``--seconds`` or at SIGTERM / Ctrl-C, in order: the
workers finish their current call, the server drains, the transport closes.
Then it prints one summary line. No eventlet, no monkey patching: plain
threads, and every thread may use the transport.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import logging
import os
import signal
import threading
import time

import structlog

import zmqactors as za

TOPIC = "daemon"


class Squares:
    """The endpoint. Runs on the server's worker threads, so it counts under a lock."""

    def __init__(self) -> None:
        self.served = 0
        self.notes = 0
        self._lock = threading.Lock()

    def square(self, x: int) -> dict[str, int]:
        """Return x * x, and which process computed it."""
        with self._lock:
            self.served += 1
        return {"square": x * x, "pid": os.getpid()}

    def note(self, worker: int) -> None:
        """A cast: nobody waits for it."""
        del worker
        with self._lock:
            self.notes += 1


class Worker:
    """One thread of the pool: calls ``square`` and casts ``note`` until told to stop."""

    def __init__(self, client: za.RPCClient, number: int, stop: threading.Event) -> None:
        self.client = client
        self.number = number
        self.stop = stop
        self.calls = 0
        self.casts = 0
        self.errors = 0

    def run(self) -> None:
        """Loop until ``stop`` is set; a failed call is counted, not fatal."""
        x = 0
        while not self.stop.is_set():
            x += 1
            try:
                if self.client.call("square", x=x)["square"] != x * x:
                    self.errors += 1
                self.calls += 1
                self.client.cast("note", worker=self.number)
                self.casts += 1
            except za.MessagingError as exc:
                self.errors += 1
                print(f"worker {self.number}: {type(exc).__name__}: {exc}", flush=True)
                self.stop.wait(0.1)


def main() -> int:
    """Run the daemon; return 0 if no call failed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="zmq://", help="transport URL (default: zmq://)")
    parser.add_argument("--seconds", type=float, default=10.0, help="run time (default: 10)")
    parser.add_argument("--workers", type=int, default=8, help="calling threads (default: 8)")
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))

    # The handler only sets a flag: the main thread does the shutdown, in order.
    # (Calling transport.close() from the handler is also safe: it is the
    # emergency brake, failing every call in flight at once.)
    stop = threading.Event()
    reason = ["timer"]

    def on_signal(signum: int, _frame: object) -> None:
        reason[0] = signal.Signals(signum).name
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    squares = Squares()
    started = time.monotonic()
    with za.Transport.from_url(args.url) as transport:
        server = za.RPCServer(
            transport, za.Target(TOPIC, server=f"daemon-{os.getpid()}"), [squares]
        )
        server.start()
        print(f"ready {server.address} pid={os.getpid()}", flush=True)
        client = za.RPCClient(transport, za.Target(TOPIC), timeout=5.0)
        workers = [Worker(client, n, stop) for n in range(args.workers)]
        with concurrent.futures.ThreadPoolExecutor(args.workers, "worker") as pool:
            running = [pool.submit(worker.run) for worker in workers]
            stop.wait(args.seconds)
            stop.set()
            concurrent.futures.wait(running, timeout=10.0)
        server.stop()
        server.wait(timeout=10.0)
    calls = sum(w.calls for w in workers)
    errors = sum(w.errors for w in workers)
    print(
        f"summary: stopped-by={reason[0]} seconds={time.monotonic() - started:.1f} "
        f"workers={args.workers} calls={calls} casts={sum(w.casts for w in workers)} "
        f"errors={errors} served={squares.served} notes={squares.notes}",
        flush=True,
    )
    return 0 if errors == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
