"""The overload soak's adversaries, each a process: ``ready`` on stdout, SIGTERM, a JSON summary.

``--mode greedy``: a zmqactors client keeping ``--outstanding`` slow calls
(``sleep(--seconds)``) in flight. ``--mode bombs``: a raw DEALER sending
decoding bombs (a megabyte of empty maps; every tenth, 100,000 arrays of
ten) to the server ``--server`` at ``--address``, ``--rate`` a second.
``--mode idle``: ``--count`` raw DEALERs connected to ``--address`` and
never sending. On SIGTERM each prints one JSON line of what it did.
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures
import json
import logging
import signal
import sys
import threading
from pathlib import Path

import structlog
import zmq

import zmqactors as za

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.wire_helpers import make_request, to_server
from zmqactors import wire


def greedy(
    url: str, topic: str, outstanding: int, seconds: float, done: threading.Event
) -> dict[str, object]:
    outcomes: collections.Counter[str] = collections.Counter()
    with za.Transport.from_url(url) as transport:
        client = za.RPCClient(transport, za.Target(topic), timeout=30.0)
        client.call("whoami")
        print("ready", flush=True)
        pending: set[concurrent.futures.Future[object]] = set()
        while not done.is_set():
            while len(pending) < outstanding:
                pending.add(client.call_async("sleep", seconds=seconds))
            finished, pending = concurrent.futures.wait(
                pending, timeout=0.5, return_when=concurrent.futures.FIRST_COMPLETED
            )
            for future in finished:
                error = future.exception()
                outcomes["ok" if error is None else type(error).__name__] += 1
    return {"mode": "greedy", "outstanding": outstanding, "outcomes": dict(outcomes)}


def bombs(
    address: str, topic: str, server: str, rate: float, done: threading.Event
) -> dict[str, object]:
    target = za.Target(topic, server=server)
    flat = to_server(
        wire.encode(make_request("work", topic=topic, args={"a": [{}] * (1 << 20)})), target
    )
    nested = to_server(
        wire.encode(make_request("work", topic=topic, args={"a": [[{}] * 10] * 100_000})), target
    )
    context = zmq.Context()
    sock = context.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(address)
    print("ready", flush=True)
    sent = dropped = 0
    try:
        # Pacing a load generator, not synchronising with anything.
        while not done.wait(1.0 / rate):
            try:
                sock.send_multipart(nested if sent % 10 == 9 else flat, flags=zmq.NOBLOCK)
                sent += 1
            except zmq.Again:
                dropped += 1
    finally:
        sock.close()
        context.term()
    return {"mode": "bombs", "sent": sent, "refused_by_hwm": dropped, "bytes_each": len(flat[2])}


def idle(address: str, count: int, done: threading.Event) -> dict[str, object]:
    context = zmq.Context()
    context.set(zmq.MAX_SOCKETS, count + 64)
    sockets = []
    try:
        for _ in range(count):
            sock = context.socket(zmq.DEALER)
            sock.setsockopt(zmq.LINGER, 0)
            sock.connect(address)
            sockets.append(sock)
        print("ready", flush=True)
        done.wait()
    finally:
        for sock in sockets:
            sock.close()
        context.term()
    return {"mode": "idle", "connections": len(sockets)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", choices=("greedy", "bombs", "idle"), required=True)
    parser.add_argument("--url", default="")
    parser.add_argument("--topic", default="ledger")
    parser.add_argument("--server", default="s0")
    parser.add_argument("--address", default="")
    parser.add_argument("--outstanding", type=int, default=300)
    parser.add_argument("--seconds", type=float, default=0.02)
    parser.add_argument("--rate", type=float, default=10.0)
    parser.add_argument("--count", type=int, default=1000)
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    if args.mode == "greedy":
        summary = greedy(args.url, args.topic, args.outstanding, args.seconds, done)
    elif args.mode == "bombs":
        summary = bombs(args.address, args.topic, args.server, args.rate, done)
    else:
        summary = idle(args.address, args.count, done)
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
