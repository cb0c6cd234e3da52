"""Counters of what a transport dropped or refused, so nothing is lost silently."""

from __future__ import annotations

import collections
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["Stats"]


class Stats:
    """Named counters, incremented from any actor thread, read as a snapshot.

    Counted: ``late_replies`` (a reply after its call timed out or ended),
    ``misrouted_replies`` (a reply or heartbeat for a pending call that came
    from another connection than the one the call was sent on),
    ``protocol_errors`` (frames that did not decode), ``send_failures``
    (a message ZeroMQ refused to queue: a notification or oslo driver message
    at a full send queue), ``send_queue_full`` (times a send queue was found
    full: messages then wait), ``casts_unsent`` (casts still waiting when
    their server became unreachable), ``ack_retries`` (acknowledged casts sent
    again), ``duplicates_dropped`` (copies of an acknowledged cast a server did
    not run again), ``misrouted`` (a request for a target the receiving server
    does not serve), ``rejected_stopping`` (requests that reached a stopping
    server), ``unreachable_servers`` (connections refused or lost),
    ``idle_connections_closed`` (a client's connections closed after
    ``connection_idle_timeout``), ``resource_limit_errors`` (a client's
    connection that could not be opened at the open-file limit); with
    CURVE: ``auth_rejections`` (a server refused a client's
    handshake: key not on its allow-list, or no CURVE), ``auth_failures`` (a
    server refused this client's handshake) and ``security_refusals`` (casts
    not sent because client and server disagree on CURVE), ``untrusted_routes``
    (distinct routes refused because their key is not pinned in
    ``curve_server_keys_dir``); with the file matchmaker: ``bad_routes``
    (route files ignored: a symbolic link, or an expiry further ahead than
    ``matchmaker_ttl``).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: collections.Counter[str] = collections.Counter()

    def incr(self, name: str, amount: int = 1) -> None:
        """Add ``amount`` to counter ``name``. Any thread."""
        with self._lock:
            self._counts[name] += amount

    def snapshot(self) -> Mapping[str, int]:
        """A copy of every counter. Any thread."""
        with self._lock:
            return dict(self._counts)
