"""Notifications: one notifier, two pools of listeners, each pool gets every notification.

    python examples/notifications.py [--url zmq://] [--count 10]

The "audit" pool has one listener, the "billing" pool two: every notification
goes to the audit listener and to one of the two billing listeners, which share
the load. Listeners and notifier share one process and one transport here;
in real life they are separate daemons on the same matchmaker.
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

FAILED_ORDERS = {3, 7}  # published at priority "error", the others at "info"


class Recorder:
    """A listener's endpoint: one method per priority it wants, named after the priority."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.got: list[int] = []
        self._lock = threading.Lock()  # worker threads may deliver concurrently

    def info(
        self,
        publisher_id: str,  # noqa: ARG002 - the endpoint signature
        event_type: str,  # noqa: ARG002
        payload: dict[str, int],
        metadata: dict[str, object],  # noqa: ARG002
    ) -> None:
        with self._lock:
            self.got.append(payload["order"])

    error = info  # the same handling for notifications of priority "error"


def main() -> int:
    """Publish, wait for every pool to have everything, print who got what; 0 if all did."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="zmq://", help="transport URL (default: zmq://)")
    parser.add_argument("--count", type=int, default=10, help="notifications to send")
    args = parser.parse_args()
    # An application configures logging; the library never does.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    # A topic of this run only: listeners of an earlier run killed a moment
    # ago stay registered until their entries expire, and would take a share.
    topic = f"orders.example-{os.getpid()}"
    recorders = {
        "audit": [Recorder("audit-1")],
        "billing": [Recorder("billing-1"), Recorder("billing-2")],
    }

    with za.Transport.from_url(args.url) as transport:
        listeners = [
            za.NotificationListener(transport, [za.Target(topic)], [recorder], pool=pool)
            for pool, members in recorders.items()
            for recorder in members
        ]
        for listener in listeners:
            listener.start()  # returns once registered: what is sent next reaches it
        notifier = za.Notifier(transport, publisher_id="shop.example", topics=(topic,))
        ok = True
        for order in range(args.count):
            if order in FAILED_ORDERS:
                sent = notifier.error("order.failed", {"order": order})
            else:
                sent = notifier.info("order.created", {"order": order})
            if sent != len(recorders):  # one listener of each pool
                print(f"order {order} went to {sent} listeners, not {len(recorders)}")
                ok = False
        print(f"sent {args.count} notifications on {topic!r} to pools {', '.join(recorders)}")

        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(
            sum(len(r.got) for r in members) < args.count for members in recorders.values()
        ):
            time.sleep(0.02)
        for listener in listeners:
            listener.stop()
            listener.wait()

    for pool, members in recorders.items():
        for recorder in members:
            print(f"  {pool:<8} {recorder.name:<10} got {sorted(recorder.got)}")
        received = sorted(order for recorder in members for order in recorder.got)
        complete = received == list(range(args.count))
        ok &= complete
        verdict = "every notification, once" if complete else "SOMETHING MISSING OR TWICE"
        print(f"  {pool} pool: {len(received)} of {args.count} -> {verdict}")
    print("notifications: each pool got every notification" if ok else "notifications: FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
