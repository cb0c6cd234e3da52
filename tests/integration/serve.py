"""An RPC server process for integration tests: ``ready ADDRESS`` on stdout, SIGTERM to stop."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import structlog

import zmqactors as za

# Run as a script: the repository root is not on sys.path by itself.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.helpers import Recorder

if TYPE_CHECKING:
    from collections.abc import Callable


class Endpoint(Recorder):
    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name
        self._released = threading.Event()
        # Set by serve(): its counters answer `stats`.
        self.transport: za.Transport | None = None

    def add(self, a: int, b: int) -> int:
        return a + b

    def echo(self, value: object) -> object:
        return value

    def whoami(self) -> str:
        return self.name

    def pid(self) -> int:
        return os.getpid()

    def context(self) -> dict[str, object]:
        return dict(za.request_context())

    def fail(self, message: str) -> None:
        raise ValueError(message)

    def sleep(self, seconds: float) -> float:
        time.sleep(seconds)
        return seconds

    def hold(self, seconds: float) -> bool:
        """Block until `release` (True) or ``seconds`` pass (False)."""
        return self._released.wait(seconds)

    def release(self) -> None:
        self._released.set()

    def stats(self) -> dict[str, int]:
        """The serving transport's counters (``expired_dropped``, ``busy_refused``, ...)."""
        return {} if self.transport is None else dict(self.transport.stats.snapshot())


def script_parser() -> argparse.ArgumentParser:
    """The command line every test child script takes: ``--url`` and ``--topic``."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--topic", required=True)
    return parser


def start_script(parser: argparse.ArgumentParser) -> tuple[argparse.Namespace, threading.Event]:
    """Parse the command line, log warnings only; return the arguments and an event SIGTERM sets."""
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    return args, done


def serve(make_endpoint: Callable[[str], object], *, show_pid: bool = False) -> None:
    """Serve ``make_endpoint(server name)`` on the command line's target until SIGTERM.

    Prints ``ready ADDRESS`` (and the pid with ``show_pid``) once registered.
    The reliability tests' server scripts run their own endpoints through it.
    """
    parser = script_parser()
    parser.add_argument("--server", required=True)
    parser.add_argument("--executor-size", type=int, default=None)
    parser.add_argument("--exposed", default="methods")
    args, done = start_script(parser)
    with za.Transport.from_url(args.url) as transport:
        target = za.Target(args.topic, server=args.server)
        endpoint = make_endpoint(args.server)
        if isinstance(endpoint, Endpoint):
            endpoint.transport = transport
        server = za.RPCServer(
            transport, target, [endpoint], executor_size=args.executor_size, exposed=args.exposed
        )
        with server:
            print(f"ready {server.address}{f' {os.getpid()}' if show_pid else ''}", flush=True)
            done.wait()


if __name__ == "__main__":
    serve(Endpoint)
