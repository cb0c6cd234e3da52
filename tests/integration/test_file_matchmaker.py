"""The file matchmaker's strict rules, through a real transport (issue #12, row 4); its watch.

An attacker who once could write the directory plants a route that never
expires, pointing at a socket of their own; real servers and clients on real
TCP sockets must never send to it, and the transport counts it.
"""

from __future__ import annotations

import json
import threading
from typing import TYPE_CHECKING

import pytest
import zmq

import zmqactors as za
from tests.discovery_checks import check_start_and_stop_seen_at_once
from tests.helpers import wait_until
from zmqactors.errors import SecurityError
from zmqactors.matchmaker import FileMatchmaker, inotify

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.integration

CALLS = 20


class Endpoint:
    def ping(self) -> str:
        return "pong"


def test_planted_route_that_never_expires_gets_no_call(tmp_path: Path) -> None:
    directory = tmp_path / "routes"
    url = f"zmq+file://{directory}?matchmaker_ttl=5&lookup_cache_ttl=0"
    context = zmq.Context()
    trap = context.socket(zmq.ROUTER)
    trap.setsockopt(zmq.LINGER, 0)
    trap_port = trap.bind_to_random_port("tcp://127.0.0.1")
    trap_address = f"tcp://127.0.0.1:{trap_port}"
    try:
        with za.Transport.from_url(url) as transport:
            server = za.RPCServer(transport, za.Target("strict", server="honest"), [Endpoint()])
            server.start()
            try:
                planter = FileMatchmaker(directory)
                ((key, _),) = planter.entries()
                planter.register(key, "attacker", trap_address, 5)
                for path in directory.rglob("*.route"):
                    content = json.loads(path.read_bytes())
                    if content["server"] == "attacker":
                        path.write_text(json.dumps({**content, "expires": 1e300}))

                client = za.RPCClient(transport, za.Target("strict"), timeout=5)
                assert [client.call("ping") for _ in range(CALLS)] == ["pong"] * CALLS
                # Nothing ever reached the attacker's socket.
                assert trap.poll(timeout=100) == 0
                assert transport.stats.snapshot().get("bad_routes", 0) >= 1
            finally:
                server.stop()
                server.wait(timeout=10)
    finally:
        trap.close()
        context.term()


def test_transport_refuses_a_group_writable_directory(tmp_path: Path) -> None:
    directory = tmp_path / "routes"
    directory.mkdir()
    directory.chmod(0o775)
    with pytest.raises(SecurityError, match=rf"'{directory}'.*writable by group or others"):
        za.Transport.from_url(f"zmq+file://{directory}")


# --- inotify: changes pushed to clients -------------------------------------------------


needs_inotify = pytest.mark.skipif(not inotify.available(), reason="inotify is Linux-only")


@needs_inotify
def test_the_watch_reports_new_and_removed_routes(tmp_path: Path) -> None:
    writer, watcher = FileMatchmaker(tmp_path / "mm"), FileMatchmaker(tmp_path / "mm")
    seen: list[tuple[str, ...] | None] = []
    watcher.watch(seen.append)

    def keys(since: int = 0) -> list[str]:
        return [k for batch in list(seen)[since:] if batch for k in batch]

    try:
        writer.register("default/a", "node-1", "tcp://127.0.0.1:1", 30)
        wait_until(lambda: "default/a" in keys(), "the new key directory and route")
        # A refresh is meant to go unreported (a rename over the same name), but
        # on a loaded machine the watch may see it as new: not asserted here.
        writer.register("default/a", "node-1", "tcp://127.0.0.1:1", 30)
        mark = len(seen)
        writer.register("default/b", "node-1", "tcp://127.0.0.1:1", 30)
        wait_until(lambda: "default/b" in keys(mark), "the second key")
        mark = len(seen)
        writer.unregister("default/a", "node-1", "tcp://127.0.0.1:1")
        wait_until(lambda: "default/a" in keys(mark), "the removal")
    finally:
        watcher.close()
    wait_until(
        lambda: not any(t.name == "zmqactors-file-watch" for t in threading.enumerate()),
        "the watch thread to end",
    )


@needs_inotify
def test_a_started_and_a_stopped_server_are_seen_at_once(spawn_server, tmp_path) -> None:
    url = f"zmq+file://{tmp_path / 'mm'}?matchmaker_ttl=2"
    check_start_and_stop_seen_at_once(spawn_server, url, "calc.file")
