"""An RPC server process for the back-pressure and acknowledged-cast tests.

``python ack_server.py --url URL --topic T --name N [--executor-size K]``
prints ``ready ADDRESS`` on stdout once serving and stops at SIGTERM. Its
endpoint records what casts bring, optionally after sleeping (a slow server).
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
import time

import structlog

import zmqactors as za


class Recorder:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._got: list[object] = []

    def record(self, value: object, seconds: float = 0.0, pad: bytes = b"") -> None:
        del pad  # only there to make the message large
        if seconds:
            time.sleep(seconds)
        with self._lock:
            self._got.append(value)

    def recorded(self) -> list[object]:
        with self._lock:
            return list(self._got)

    def count(self) -> int:
        with self._lock:
            return len(self._got)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--executor-size", type=int, default=None)
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    with za.Transport.from_url(args.url) as transport:
        target = za.Target(args.topic, server=args.name)
        server = za.RPCServer(transport, target, [Recorder()], executor_size=args.executor_size)
        with server:
            print(f"ready {server.address}", flush=True)
            done.wait()


if __name__ == "__main__":
    main()
