"""A pre-fork server: the parent makes the transport and the server, forked workers serve.

    python examples/prefork_server.py [--url zmq://] [--workers 3] [--calls 30]

The pattern of neutron-style services. The parent creates the transport and
an `RPCServer` but does not start it, then forks ``--workers`` workers. Each
worker calls ``server.start()`` on its inherited copy: the transport notices
it is in a new process and starts new actors on a new ZeroMQ context there,
and the worker registers its own address under the same topic. The parent
then calls the topic ``--calls`` times (the calls spread over the workers),
prints who answered, sends SIGTERM to every worker and waits for each to stop
cleanly. Exits 0 if every worker answered and exited with status 0.
"""

from __future__ import annotations

import argparse
import collections
import logging
import os
import select
import signal
import sys
import threading
import time

import structlog

import zmqactors as za

TOPIC = "prefork"
READY_TIMEOUT = 30.0
EXIT_TIMEOUT = 10.0


class Worker:
    """The endpoint each worker serves."""

    def whoami(self) -> int:
        """The pid of the worker that took the call."""
        return os.getpid()


def serve(server: za.RPCServer, transport: za.Transport, ready_fd: int) -> int:
    """A worker's life, in the forked child: start, announce, serve until SIGTERM, stop."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    server.start()
    os.write(ready_fd, f"{os.getpid()} {server.address}\n".encode())
    stop.wait()
    server.stop()
    server.wait(timeout=EXIT_TIMEOUT)
    transport.close()
    return 0


def fork_worker(server: za.RPCServer, transport: za.Transport, ready_fd: int) -> int:
    """Fork one worker; return its pid in the parent (the child never returns)."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            code = serve(server, transport, ready_fd)
        finally:
            # A forked child must not return into the parent's code.
            os._exit(code)
    return pid


def read_ready(fd: int, count: int) -> list[str]:
    """Read ``count`` "PID ADDRESS" lines from the workers, or fewer after READY_TIMEOUT."""
    data = b""
    deadline = time.monotonic() + READY_TIMEOUT
    while data.count(b"\n") < count:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            break
        data += os.read(fd, 4096)
    return data.decode().splitlines()


def reap(pids: list[int]) -> dict[int, int | None]:
    """SIGTERM every worker and collect its exit status (None: killed after EXIT_TIMEOUT)."""
    for pid in pids:
        os.kill(pid, signal.SIGTERM)
    status: dict[int, int | None] = {}
    deadline = time.monotonic() + EXIT_TIMEOUT
    while len(status) < len(pids) and time.monotonic() < deadline:
        for pid in pids:
            if pid not in status:
                done, code = os.waitpid(pid, os.WNOHANG)
                if done == pid:
                    status[pid] = os.waitstatus_to_exitcode(code)
        time.sleep(0.01)
    for pid in pids:
        if pid not in status:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            status[pid] = None
    return status


def main() -> int:
    """Fork the workers, spread calls over them, stop them; 0 if all went well."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="zmq://", help="transport URL (default: zmq://)")
    parser.add_argument("--workers", type=int, default=3, help="workers to fork (default: 3)")
    parser.add_argument("--calls", type=int, default=30, help="calls to spread (default: 30)")
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))

    with za.Transport.from_url(args.url) as transport:
        # Made in the parent, started only in the workers. (The parent forks
        # before it uses the transport, so it has no threads yet, which is what
        # Python recommends; forking after use works too, see tests/fork.)
        server = za.RPCServer(transport, za.Target(TOPIC), [Worker()], executor_size=4)
        ready_r, ready_w = os.pipe()
        pids = [fork_worker(server, transport, ready_w) for _ in range(args.workers)]
        os.close(ready_w)
        try:
            for line in read_ready(ready_r, args.workers):
                pid, address = line.split()
                print(f"worker {pid} serving at {address}", flush=True)
            # The parent's own first use: its actors start now, in this process.
            client = za.RPCClient(transport, za.Target(TOPIC), timeout=5.0)
            answered = collections.Counter(client.call("whoami") for _ in range(args.calls))
            for pid, count in sorted(answered.items()):
                print(f"worker {pid} answered {count} calls", flush=True)
        finally:
            os.close(ready_r)
            status = reap(pids)
    for pid, code in sorted(status.items()):
        print(f"worker {pid} exited with {'a timeout' if code is None else code}", flush=True)
    ok = set(answered) == set(pids) and all(code == 0 for code in status.values())
    print("all workers served and exited cleanly" if ok else "something went wrong", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
