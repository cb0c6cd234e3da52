"""One transport hosting 1,000 servers has the threads and sockets of one (issue #19, item 2).

Every server of a transport shares its network socket and its pool of
workers: 1,000 `RPCServer`s (before, the 58th failed to start) are each
reached by name through the one address, and the process has the threads
and descriptors it had with one server. The shared socket answers what no
server of the transport serves; servers sharing a name take turns; running
out of descriptors raises `ResourceLimitError`.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest

import zmqactors as za
from tests.helpers import wait_until
from tests.wire_helpers import make_request, raw_exchange, to_server
from zmqactors import wire

pytestmark = pytest.mark.integration

SERVERS = 1000


class Named:
    def __init__(self, name: str) -> None:
        self.name = name

    def whoami(self) -> str:
        return self.name


def open_fds() -> int:
    return sum(1 for _ in Path("/proc/self/fd").iterdir())


def poller_sockets(transport: za.Transport) -> int:
    """How many sockets the poller serves (a look inside its actor, for this test only)."""
    poller = transport.runtime().poller
    assert poller is not None
    actor = poller.actor_inbox._actor  # type: ignore[attr-defined]
    return len(actor._handlers)


def test_a_thousand_servers_cost_the_threads_and_sockets_of_one(on_loopback):
    url = on_loopback(f"zmq+memory://many-{uuid.uuid4().hex}")
    with za.Transport.from_url(url) as host, za.Transport.from_url(url) as caller:
        servers = [
            za.RPCServer(host, za.Target("many", server=f"s{i}"), [Named(f"s{i}")])
            for i in range(SERVERS)
        ]
        servers[0].start()
        client = za.RPCClient(caller, za.Target("many"), timeout=10.0)
        assert client.prepare(server="s0").call("whoami") == "s0"
        threads, fds, sockets = len(threading.enumerate()), open_fds(), poller_sockets(host)
        for server in servers[1:]:
            server.start()
        assert {server.address for server in servers} == {servers[0].address}
        assert len(threading.enumerate()) == threads
        assert poller_sockets(host) == sockets
        assert open_fds() == fds
        for i in range(0, SERVERS, 37):
            assert client.prepare(server=f"s{i}").call("whoami") == f"s{i}"
        # A stopped one is no longer served; its neighbours still are.
        servers[5].stop()
        servers[5].wait(timeout=10.0)
        with pytest.raises(za.NoRespondersError):
            client.prepare(server="s5").call("whoami")
        assert client.prepare(server="s6").call("whoami") == "s6"


# Run in a child: the open-file limit is the whole process's.
OUT_OF_FILES = """
import logging, os, resource, sys, uuid
import structlog
structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))
import zmqactors as za

class Endpoint:
    def ping(self):
        return "pong"

with za.Transport.from_url(f"zmq+memory://rl-{uuid.uuid4().hex}") as transport:
    transport.runtime(serving=True)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    # A few descriptors left: enough to bind the server's socket (libzmq
    # aborts the process if its resolver finds none), not for its pool of
    # workers (an eventfd and a socket each).
    resource.setrlimit(resource.RLIMIT_NOFILE, (len(os.listdir("/proc/self/fd")) + 4, hard))
    server = za.RPCServer(transport, za.Target("rl", server="s"), [Endpoint()])
    try:
        server.start()
        print("started")
    except za.MessagingError as exc:
        print(type(exc).__name__, exc)
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    # Nothing else was lost: with descriptors again, the same server starts.
    server.start()
    client = za.RPCClient(transport, za.Target("rl", server="s"), timeout=10)
    print("then", client.call("ping"))
"""


def test_out_of_descriptors_a_server_start_raises_a_resource_limit_error_naming_it():
    done = subprocess.run(
        [sys.executable, "-c", OUT_OF_FILES],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    first, then = done.stdout.splitlines()
    assert first.startswith("ResourceLimitError"), first
    assert "RLIMIT_NOFILE" in first
    assert then == "then pong"


def test_a_destination_the_transport_does_not_serve_is_answered_not_served_and_counted(
    on_loopback,
):
    url = on_loopback(f"zmq+memory://stale-{uuid.uuid4().hex}")
    with za.Transport.from_url(url) as host:
        server = za.RPCServer(host, za.Target("here", server="s"), [Named("s")])
        server.start()
        elsewhere = za.Target("gone", server="old")
        call = make_request("whoami", topic="gone", server="old")
        reply = raw_exchange(
            server.address, to_server(wire.encode(call), elsewhere), expect_reply=True
        )
        assert reply is not None
        error = wire.decode(reply, 1 << 20)
        assert isinstance(error, wire.ErrorReply)
        assert error.msg_id == call.msg_id
        assert isinstance(wire.error_to_exception(error), za.NoRespondersError)
        assert "'default/gone'" in error.message
        assert "'old'" in error.message
        cast = make_request("whoami", topic="gone", server="old", kind=wire.CallKind.CAST)
        raw_exchange(server.address, to_server(wire.encode(cast), elsewhere), expect_reply=False)
        wait_until(lambda: host.stats.snapshot().get("not_served", 0) == 2, "the count")
        # The server it does serve is untouched.
        client = za.RPCClient(host, za.Target("here", server="s"), timeout=10.0)
        assert client.call("whoami") == "s"


def test_two_servers_with_one_name_in_a_transport_take_its_requests_in_turn(on_loopback):
    url = on_loopback(f"zmq+memory://twins-{uuid.uuid4().hex}")
    with za.Transport.from_url(url) as host:
        first = za.RPCServer(host, za.Target("twins", server="s"), [Named("first")])
        second = za.RPCServer(host, za.Target("twins", server="s"), [Named("second")])
        first.start()
        second.start()
        client = za.RPCClient(host, za.Target("twins", server="s"), timeout=10.0)
        answers = [client.call("whoami") for _ in range(6)]
        assert sorted(answers) == ["first"] * 3 + ["second"] * 3
        first.stop()
        first.wait(timeout=10.0)
        assert {client.call("whoami") for _ in range(4)} == {"second"}
