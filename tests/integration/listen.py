"""A notification listener process for tests: prints ``ready``, then one line per delivery.

Lines: ``got <payload id>`` for single notifications, ``batch <n> <id> <id>...``
for batches. SIGTERM stops it.
"""

from __future__ import annotations

import sys
import threading
import time

# Run as a script: its own directory, which holds serve.py, is on sys.path.
from serve import script_parser, start_script

import zmqactors as za


class Endpoint:
    def __init__(self, requeue_first: bool, delay: float = 0.0) -> None:
        self._requeue_first = requeue_first
        self._delay = delay
        self._seen: set[object] = set()
        self._lock = threading.Lock()

    def info(self, publisher_id, event_type, payload, metadata):  # noqa: ARG002 - the endpoint signature
        with self._lock:
            if self._requeue_first and payload["id"] not in self._seen:
                self._seen.add(payload["id"])
                print(f"requeued {payload['id']}", flush=True)
                return za.NotificationResult.REQUEUE
            print(f"got {payload['id']} {publisher_id} {event_type}", flush=True)
        if self._delay:
            time.sleep(self._delay)  # a slow listener (not synchronisation)
        return None


class BatchEndpoint:
    def info(self, messages):
        ids = " ".join(str(m["payload"]["id"]) for m in messages)
        print(f"batch {len(messages)} {ids}", flush=True)


def main() -> None:
    parser = script_parser()
    parser.add_argument("--pool", default=None)
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--batch-timeout", type=float, default=None)
    parser.add_argument("--requeue-first", action="store_true")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds per notification")
    args, done = start_script(parser)
    endpoint = BatchEndpoint() if args.batch_size > 1 else Endpoint(args.requeue_first, args.delay)
    with za.Transport.from_url(args.url) as transport:
        listener = za.NotificationListener(
            transport,
            [za.Target(args.topic)],
            [endpoint],
            pool=args.pool,
            batch_size=args.batch_size,
            batch_timeout=args.batch_timeout,
        )
        with listener:
            print(f"ready {listener.address}", flush=True)
            done.wait()
    sys.stdout.flush()


if __name__ == "__main__":
    main()
