"""Fanout: one cast reaches every server of a topic, once each; a call reaches one.

    python examples/fanout.py [--url zmq://]

Three RPC servers (here in one process, with distinct server names; in real
life one per daemon or host) serve one topic. A client casts ``reload`` with
``prepare(fanout=True)``: each server runs it once. Calls (and plain casts)
go to one server of the topic, taking the servers in turn.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
import time

import structlog

import zmqactors as za

SERVERS = ("node-a", "node-b", "node-c")


class Config:
    """The endpoint: a service whose configuration can be reloaded."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.reloads: list[int] = []
        self._lock = threading.Lock()

    def reload(self, generation: int) -> None:
        """Reload the configuration (here: remember that it was asked)."""
        with self._lock:
            self.reloads.append(generation)

    def whoami(self) -> str:
        """This server's name."""
        return self.name


def main() -> int:
    """Fan a cast out to three servers; print who got it; 0 if each got it exactly once."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="zmq://", help="transport URL (default: zmq://)")
    args = parser.parse_args()
    # An application configures logging; the library never does.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    # A topic of this run only: servers of another run of this example
    # would get our fanout too.
    topic = f"config.example-{os.getpid()}"
    endpoints = [Config(name) for name in SERVERS]

    with za.Transport.from_url(args.url) as transport:
        servers = [
            za.RPCServer(transport, za.Target(topic, server=endpoint.name), [endpoint])
            for endpoint in endpoints
        ]
        for server in servers:
            server.start()  # returns once registered: the fanout below reaches it
        client = za.RPCClient(transport, za.Target(topic), timeout=5)

        client.prepare(fanout=True).cast("reload", generation=1)
        print(f"fanout cast reload(generation=1) on {topic!r}")
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not all(e.reloads for e in endpoints):
            time.sleep(0.02)
        time.sleep(0.2)  # a duplicate, if there were one, would arrive meanwhile
        for endpoint in endpoints:
            print(f"  {endpoint.name} got reload {endpoint.reloads}")
        ok = all(endpoint.reloads == [1] for endpoint in endpoints)

        print("plain calls take the servers in turn:")
        for _ in SERVERS:
            print(f"  whoami() -> {client.call('whoami')}")

        for server in servers:
            server.stop()
            server.wait()

    print("fanout: every server got it exactly once" if ok else "fanout: FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
