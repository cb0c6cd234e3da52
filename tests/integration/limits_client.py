"""A child process that runs into its limits and prints, as JSON lines, what it got.

``--mode sockets``: open network sockets (`zmqactors.net.sockets`) on a
transport whose URL sets ``max_sockets`` until one fails. ``--mode nofile``:
the same under a low ``RLIMIT_NOFILE``. ``--mode call``: with ``--free N``
descriptors left under a low ``RLIMIT_NOFILE``, call ``add`` on ``--topic``
(a server the route cache already knows), then again once the descriptors
are given back. ``--mode start``: with a soft ``RLIMIT_NOFILE`` of 300
below a hard one of 2,000, start a transport (``max_sockets`` from the
URL), then two more asking for twice as many sockets; prints the limits
after, with the warnings logged on stderr. Each outcome: ``{"step", "error" (class name or null),
"message", "elapsed"}``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import sys
import time
from pathlib import Path

import structlog
import zmq

import zmqactors as za

# Run as a script: the repository root is not on sys.path by itself.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from zmqactors.net.context import get_context
from zmqactors.net.sockets import network_socket

NOFILE = 256


def report(step: str, started: float, error: BaseException | None, result: object = None) -> None:
    print(
        json.dumps(
            {
                "step": step,
                "error": None if error is None else type(error).__name__,
                "message": str(error) if error is not None else repr(result),
                "elapsed": time.monotonic() - started,
            }
        ),
        flush=True,
    )


def open_sockets(transport: za.Transport) -> None:
    transport.runtime()  # the transport's start: limits applied, context created
    sockets: list[zmq.Socket[bytes]] = []
    started = time.monotonic()
    try:
        while len(sockets) < 100_000:
            sockets.append(network_socket(get_context(), zmq.DEALER, transport.settings))
    except Exception as exc:  # noqa: BLE001 - what it is, is the test's answer
        report(f"socket {len(sockets)}", started, exc)
    finally:
        for sock in sockets:
            sock.close(linger=0)


def descriptors() -> int:
    return sum(1 for _ in Path("/proc/self/fd").iterdir())


def call_when_exhausted(transport: za.Transport, topic: str, free: int) -> None:
    target = za.Target(topic)
    # The route is looked up (the file matchmaker opens files) before the
    # descriptors run out; no connection to the server exists yet.
    transport.runtime().routes(target)
    client = za.RPCClient(transport, target, timeout=2.0)
    held = []
    while descriptors() < NOFILE - free:
        held.append(os.open(os.devnull, os.O_RDONLY))
    started = time.monotonic()
    try:
        result = client.call("add", a=1, b=2)
    except Exception as exc:  # noqa: BLE001 - what it is, is the test's answer
        report("exhausted", started, exc)
    else:
        report("exhausted", started, None, result)
    for fd in held:
        os.close(fd)
    started = time.monotonic()
    try:
        result = client.call("add", a=2, b=3)
    except Exception as exc:  # noqa: BLE001
        report("after", started, exc)
    else:
        report("after", started, None, result)


def start_transports(url: str) -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (300, 2000))
    with za.Transport.from_url(url) as first:
        first.runtime()
        more = first.settings.max_sockets * 2
        for _ in range(2):
            with za.Transport.from_url(f"zmq+memory://later?max_sockets={more}") as later:
                later.runtime()
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        print(
            json.dumps(
                {"soft": soft, "hard": hard, "max_sockets": get_context().get(zmq.MAX_SOCKETS)}
            ),
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--mode", choices=("sockets", "nofile", "call", "start"), required=True)
    parser.add_argument("--topic", default="limits")
    parser.add_argument("--free", type=int, default=0)
    args = parser.parse_args()
    # Plain lines, no colours: a renderer importing modules on its first
    # line would fail with the descriptors exhausted.
    structlog.configure(
        processors=[structlog.processors.add_log_level, structlog.processors.JSONRenderer()],
        wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
    )
    if args.mode == "start":
        start_transports(args.url)
        return
    if args.mode != "sockets":
        resource.setrlimit(resource.RLIMIT_NOFILE, (NOFILE, NOFILE))
    with za.Transport.from_url(args.url) as transport:
        if args.mode == "call":
            call_when_exhausted(transport, args.topic, args.free)
        else:
            open_sockets(transport)


if __name__ == "__main__":
    main()
