"""An RPC server: serves a small calculator on a topic until SIGTERM or Ctrl-C.

    python examples/rpc_server.py [--url zmq://] [--topic demo] [--server NAME]

It prints one line ``ready <server> <address>`` once clients can reach it.
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
import time

import structlog

import zmqactors as za


class Calculator:
    """The endpoint: every public method can be called by clients with keyword arguments."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.lines: list[str] = []

    def add(self, a: float, b: float) -> float:
        """Return a + b."""
        return a + b

    def log(self, line: str) -> None:
        """Remember a line (used with cast: nobody waits for the answer)."""
        self.lines.append(line)

    def logged(self) -> list[str]:
        """The lines received so far."""
        return self.lines

    def whoami(self) -> str:
        """This server's name, and the caller's context."""
        user = za.request_context().get("user", "anonymous")
        return f"{self.name} (called by {user})"

    def divide(self, a: float, b: float) -> float:
        """Return a / b; raises ZeroDivisionError for b == 0, which the caller gets."""
        return a / b

    def sleep(self, seconds: float) -> float:
        """Take ``seconds`` to answer."""
        time.sleep(seconds)
        return seconds


def main() -> None:
    """Serve until SIGTERM or SIGINT."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="zmq://", help="transport URL (default: zmq://)")
    parser.add_argument("--topic", default="demo")
    parser.add_argument("--server", default="demo-server", help="this server's name")
    args = parser.parse_args()
    # An application configures logging; the library never does.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))

    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    with za.Transport.from_url(args.url) as transport:
        target = za.Target(topic=args.topic, server=args.server)
        with za.RPCServer(transport, target, [Calculator(args.server)]) as server:
            print(f"ready {args.server} {server.address}", flush=True)
            done.wait()
    print("server stopped", flush=True)


if __name__ == "__main__":
    main()
