"""A client's connections: one ROUTER carries them all (issue #19).

Real servers on real TCP sockets: hundreds of servers in a few processes
reached at a constant number of sockets and threads (about one descriptor per
connection), CURVE servers with different keys through the one socket, idle
connections closed and reopened without losing the call, the fast
failure of a refused connection, and a typed error at the socket limit.
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

import zmqactors as za
from tests.helpers import free_port, wait_until
from zmqactors.matchmaker import MemoryMatchmaker
from zmqactors.options import parse_url
from zmqactors.topics import matchmaker_key

pytestmark = pytest.mark.integration

TIMEOUT = 10.0
MANY = Path(__file__).parent / "many_servers.py"


def connections(transport: za.Transport) -> int:
    """How many connections the transport's reply-waiter holds open now."""
    waiter = transport.runtime().reply_waiter
    count: int = waiter.proxy().connection_count().get(timeout=TIMEOUT)
    return count


def open_fds() -> int:
    return sum(1 for _ in Path("/proc/self/fd").iterdir())


def threads() -> int:
    """Every thread of this process, libzmq's included."""
    return sum(1 for _ in Path("/proc/self/task").iterdir())


class Named:
    def __init__(self, name: str) -> None:
        self.name = name

    def whoami(self) -> str:
        return self.name


@pytest.mark.timeout(300)
def test_hundreds_of_servers_cost_one_descriptor_each_and_no_thread(spawn_server, transport):
    # A transport of its own for each server: one address, one connection, each.
    per_process, processes = 100, 3
    for k in range(processes):
        spawn_server(
            "scale",
            f"p{k}",
            "--count",
            str(per_process),
            "--transport-each",
            script=MANY,
            ready_timeout=180,
        )
    client = za.RPCClient(transport, za.Target("scale"), timeout=TIMEOUT)
    names = [f"p{k}-{i}" for k in range(processes) for i in range(per_process)]

    def reach(some: list[str]) -> None:
        for name in some:
            assert client.prepare(server=name).call("whoami") == name

    reach(names[:10])
    fds, before = open_fds(), threads()
    assert connections(transport) == 10
    reach(names[10:])
    assert connections(transport) == len(names)
    added = len(names) - 10
    # One TCP descriptor per new connection (a DEALER and a monitor per
    # server cost four), and not one thread more.
    assert added <= open_fds() - fds <= added + 20
    assert threads() == before
    # Every one of them still answers on its own connection.
    reach(names[::37])
    assert transport.stats.snapshot().get("misrouted_replies", 0) == 0


def test_curve_servers_with_different_keys_share_the_one_socket(curve_keys, transports):
    url = f"zmq+memory://rclient-{uuid.uuid4().hex}"
    first = za.RPCServer(
        transports(curve_keys.server_url(url)), za.Target("keys", server="a"), [Named("a")]
    )
    # The intruder's key pair serves here: a second, different server key.
    second = za.RPCServer(
        transports(curve_keys.server_url(url, "intruder")),
        za.Target("keys", server="b"),
        [Named("b")],
    )
    with first, second:
        assert first.server_key != second.server_key
        client_transport = transports(curve_keys.client_url(url))
        client = za.RPCClient(client_transport, za.Target("keys"), timeout=TIMEOUT)
        for _ in range(3):
            assert client.prepare(server="a").call("whoami") == "a"
            assert client.prepare(server="b").call("whoami") == "b"
        assert connections(client_transport) == 2
        # A route to the first server carrying the second's key: the CURVE
        # handshake fails, and the call says so instead of timing out.
        MemoryMatchmaker(parse_url(url).matchmaker.location).register(
            matchmaker_key(za.Target("keys")), "liar", first.address, 60, second.server_key
        )
        started = time.monotonic()
        with pytest.raises(za.SecurityError, match="CURVE handshake"):
            client.prepare(server="liar").call("whoami")
        assert time.monotonic() - started < TIMEOUT / 2
        # The good connections are untouched.
        assert client.prepare(server="a").call("whoami") == "a"
        assert client.prepare(server="b").call("whoami") == "b"


def test_an_idle_connection_closes_and_the_next_call_reopens_it(
    spawn_server, matchmaker_url, with_query, transports
):
    spawn_server("idle", "s")
    transport = transports(with_query(matchmaker_url, "connection_idle_timeout=0.2"))
    client = za.RPCClient(transport, za.Target("idle", server="s"), timeout=TIMEOUT)
    assert client.call("add", a=1, b=2) == 3
    assert connections(transport) == 1

    def closed() -> bool:
        return transport.stats.snapshot().get("idle_connections_closed", 0) >= 1

    wait_until(closed, "the idle connection to close", timeout=TIMEOUT)
    assert connections(transport) == 0
    # A cast first, then a call: neither is lost on the new connection.
    client.cast("record", value="after idle")
    assert client.call("add", a=2, b=3) == 5
    assert connections(transport) == 1
    wait_until(lambda: client.call("recorded") == ["after idle"], "the cast", timeout=TIMEOUT)
    # A call waiting for its reply keeps its connection open past the timeout.
    closes = transport.stats.snapshot()["idle_connections_closed"]
    assert client.call("sleep", seconds=0.6) == 0.6
    assert transport.stats.snapshot()["idle_connections_closed"] == closes


def test_idle_timeout_zero_keeps_connections(spawn_server, matchmaker_url, with_query, transports):
    spawn_server("idle", "s")
    transport = transports(with_query(matchmaker_url, "connection_idle_timeout=0"))
    client = za.RPCClient(transport, za.Target("idle", server="s"), timeout=TIMEOUT)
    assert client.call("add", a=1, b=2) == 3
    assert client.call("sleep", seconds=0.3) == 0.3
    assert connections(transport) == 1
    assert "idle_connections_closed" not in transport.stats.snapshot()


@pytest.mark.parametrize("value", ["-1", "86401", "soon"])
def test_a_bad_idle_timeout_is_refused_with_its_name(value):
    with pytest.raises(za.ConfigurationError, match="connection_idle_timeout"):
        parse_url(f"zmq+memory://?connection_idle_timeout={value}")


def test_a_refused_connection_fails_fast_and_the_next_call_works(transports):
    url = f"zmq+memory://rclient-{uuid.uuid4().hex}"
    server = za.RPCServer(transports(url), za.Target("refused", server="live"), [Named("live")])
    with server:
        transport = transports(url)
        client = za.RPCClient(transport, za.Target("refused"), timeout=TIMEOUT)
        assert client.prepare(server="live").call("whoami") == "live"
        # A registration left behind by a server that is gone: nothing listens there.
        MemoryMatchmaker(parse_url(url).matchmaker.location).register(
            matchmaker_key(za.Target("refused")), "gone", f"tcp://127.0.0.1:{free_port()}", 60
        )
        started = time.monotonic()
        with pytest.raises(za.NoRespondersError, match="cannot be reached"):
            client.prepare(server="gone").call("whoami")
        assert time.monotonic() - started < 2.0
        assert transport.stats.snapshot().get("unreachable_servers", 0) == 1
        # The refused connection is closed; the live one is not.
        assert connections(transport) == 1
        assert client.prepare(server="live").call("whoami") == "live"


# Run in a child: the socket limit is the process context's, set before its first socket.
CAST_AND_EXIT = """
import sys
import zmqactors as za

with za.Transport.from_url(sys.argv[1]) as transport:
    za.RPCClient(transport, za.Target("exit", fanout=True)).cast("record", value=int(sys.argv[2]))
"""


def test_a_cast_to_new_connections_right_before_close_is_delivered(
    spawn_server, matchmaker_url, transport
):
    # The command line's `cast` closes its transport right after sending, on
    # connections still in their handshake: a ROUTER closed then would drop it.
    names = ["a", "b", "c"]
    for name in names:
        spawn_server("exit", name)
    rounds = 4
    for value in range(rounds):
        subprocess.run(
            [sys.executable, "-c", CAST_AND_EXIT, matchmaker_url, str(value)],
            timeout=60,
            check=True,
        )
    client = za.RPCClient(transport, za.Target("exit"), timeout=TIMEOUT)
    for name in names:
        direct = client.prepare(server=name)
        got = lambda d=direct: len(d.call("recorded")) == rounds  # noqa: E731
        wait_until(got, f"the casts to {name}", timeout=TIMEOUT)
        assert direct.call("recorded") == list(range(rounds))


# Run in a child: it lowers its own open-file limit, which the test process must not.
AT_THE_DESCRIPTOR_LIMIT = """
import os
import resource
import sys

import zmqactors as za

with za.Transport.from_url(sys.argv[1]) as transport:
    client = za.RPCClient(transport, za.Target("nofile"), timeout=5)
    print(client.prepare(server="s").call("whoami"))
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    # Below what is open now: libzmq cannot open a TCP socket to "u".
    resource.setrlimit(resource.RLIMIT_NOFILE, (len(os.listdir("/proc/self/fd")) - 3, hard))
    try:
        client.prepare(server="u").call("whoami")
    except za.MessagingError as exc:
        print(type(exc).__name__, exc)
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    print(client.prepare(server="u").call("whoami"))
    print(sorted(transport.stats.snapshot()))
"""


def test_the_open_file_limit_is_a_typed_error_and_the_server_stays_usable(
    spawn_server, matchmaker_url
):
    for name in ("s", "u"):
        spawn_server("nofile", name)
    done = subprocess.run(
        [sys.executable, "-c", AT_THE_DESCRIPTOR_LIMIT, matchmaker_url],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    # structlog's default output (stdout) holds the warning; the prints are the rest.
    lines = [line for line in done.stdout.splitlines() if " [warning  ] " not in line]
    assert len(lines) == 4, done.stdout + done.stderr
    assert lines[0] == "s"
    assert lines[1].startswith("ResourceLimitError "), lines[1]
    assert "RLIMIT_NOFILE" in lines[1]
    # Not taken for an unreachable server: the next call reaches it at once.
    assert lines[2] == "u"
    assert "unreachable_servers" not in lines[3]
    assert "resource_limit_errors" in lines[3]
