"""`Handler`: what a worker actor runs for each request body.

Implemented by `zmqactors.core.dispatch.Dispatcher` (RPC),
`zmqactors.core.notify_dispatch.NotificationDispatcher` and the oslo driver's
handler; run by `zmqactors.actors.worker.Worker`, one thread each.
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["Handler"]


class Handler(Protocol):
    """What a worker runs for each request body (an RPC or a notification dispatcher)."""

    def handle(
        self, body: bytes, client: bytes = b"", arrival: float | None = None
    ) -> bytes | None:
        """Run the request from ``client``; return the reply body, or None.

        Never raises for bad input. ``client`` identifies the caller's
        connection, for handlers that reply later (`SendReply`). ``arrival``
        is when the poller received it (``time.monotonic()``): a call whose
        ``timeout`` has passed since is dropped unrun (`expired`).
        """

    def next_deadline(self) -> float | None:
        """When `on_deadline` should run next (``time.monotonic()``), or None."""

    def on_deadline(self, now: float) -> None:
        """Run due timers (e.g. flush a batch)."""
