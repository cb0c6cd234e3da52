"""Checks every matchmaker backend that pushes changes passes, with real server processes."""

from __future__ import annotations

from typing import TYPE_CHECKING

import zmqactors as za
from tests.helpers import wait_until

if TYPE_CHECKING:
    from collections.abc import Callable

# Within this, a client sees a server start or stop: one round trip, with margin.
SEEN_WITHIN = 3.0


def check_start_and_stop_seen_at_once(
    spawn_server: Callable[..., object], url: str, topic: str
) -> None:
    """A client with a 600 s lookup cache spreads calls onto a server started after it,
    and stops calling it once it stops: only a pushed change can do that.

    ``spawn_server`` is the ``spawn_server`` fixture; ``url`` the servers'
    matchmaker URL, with a query.
    """
    spawn_server(topic, "node-1", url=url)
    with za.Transport.from_url(f"{url}&lookup_cache_ttl=600") as transport:
        client = za.RPCClient(transport, za.Target(topic), timeout=5.0)
        assert client.call("whoami") == "node-1"
        second = spawn_server(topic, "node-2", url=url)
        wait_until(
            lambda: {client.call("whoami") for _ in range(4)} == {"node-1", "node-2"},
            "the client spreads calls onto node-2",
            timeout=SEEN_WITHIN,
        )
        assert second.stop() == 0  # type: ignore[attr-defined]
        wait_until(
            lambda: {client.call("whoami") for _ in range(4)} == {"node-1"},
            "the client stops calling node-2",
            timeout=SEEN_WITHIN,
        )


def check_calls_between_processes(transport_url: str, topic: str) -> None:
    """A client of ``transport_url`` reaches the servers node-1 and node-2 of ``topic``:
    any of them, each in turn, and the one it names.
    """
    with za.Transport.from_url(transport_url) as transport:
        client = za.RPCClient(transport, za.Target(topic), timeout=5.0)
        assert client.call("add", a=2, b=40) == 42
        assert {client.call("whoami") for _ in range(4)} == {"node-1", "node-2"}
        assert client.prepare(server="node-2").call("whoami") == "node-2"
