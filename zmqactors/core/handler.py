"""`Handler`: what a worker actor runs for each request body.

Implemented by `zmqactors.core.dispatch.Dispatcher` (RPC),
`zmqactors.core.notify_dispatch.NotificationDispatcher` and the oslo driver's
handler; run by `zmqactors.actors.worker.Worker`, one thread each.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from collections.abc import Mapping
    from contextlib import AbstractContextManager

__all__ = ["Handler", "ServerTracer"]


class ServerTracer(Protocol):
    """Continues a caller's trace around an endpoint call (`zmqactors.transport.tracing`)."""

    def served(
        self, carrier: Mapping[str, str], topic: str, method: str, *, call: bool
    ) -> AbstractContextManager[None]:
        """A span around running ``method``, a child of the trace in ``carrier``."""


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
