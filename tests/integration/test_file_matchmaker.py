"""The file matchmaker's strict rules, through a real transport (issue #12, row 4).

An attacker who once could write the directory plants a route that never
expires, pointing at a socket of their own; real servers and clients on real
TCP sockets must never send to it, and the transport counts it.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest
import zmq

import zmqactors as za
from zmqactors.errors import SecurityError
from zmqactors.matchmaker import FileMatchmaker

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
