"""Tests of addresses of both IP families: option values, endpoints, what a server advertises."""

from __future__ import annotations

import socket

import pytest

from zmqactors import _addresses
from zmqactors._addresses import (
    advertised_endpoint,
    is_loopback_endpoint,
    peer_address,
    tcp_endpoint,
)
from zmqactors.errors import ConfigurationError
from zmqactors.options import Settings, parse_url

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("::1", "::1"),
        ("[::1]", "::1"),
        ("fd00::5", "fd00::5"),
        ("[fe80::1%eth0]", "fe80::1%eth0"),
        ("::", "::"),
        ("[::]", "::"),
        ("*", "*"),
        ("0.0.0.0", "0.0.0.0"),  # noqa: S104 - not bound
        ("node-1.example", "node-1.example"),
        ("eth0", "eth0"),
    ],
)
def test_bind_address_takes_both_families_and_drops_the_brackets(given, stored):
    assert Settings(bind_address=given).bind_address == stored
    assert parse_url(f"zmq://?bind_address={given}").bind_address == stored


def test_host_takes_an_ipv6_literal_and_drops_the_brackets():
    assert Settings(host="[fd00::7]").host == "fd00::7"
    assert Settings(host="fd00::7").advertised_host == "fd00::7"


@pytest.mark.parametrize(
    ("option", "value", "problem"),
    [
        ("bind_address", "[::1", "unbalanced brackets"),
        ("bind_address", "::1]", "unbalanced brackets"),
        ("bind_address", "::1:99999", "must be an IPv6 address here"),
        ("bind_address", "127.0.0.1:5555", "a port does not belong in it"),
        ("bind_address", "[127.0.0.1]", "only an IPv6 address goes in brackets"),
        ("bind_address", "no/such", "must be an IP address or a host name"),
        ("host", "[::1", "unbalanced brackets"),
        ("host", "fd00::1::2", "must be an IPv6 address here"),
        ("host", "::", "not the wildcard"),
        ("host", "*", "not the wildcard"),
    ],
)
def test_a_malformed_address_names_the_option_and_the_value(option, value, problem):
    with pytest.raises(ConfigurationError) as info:
        parse_url(f"zmq://?{option}={value}")
    message = str(info.value)
    assert f"option zmq.{option}" in message
    assert repr(value) in message
    assert problem in message


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("zmq+redis://[1:2]:6379/0", "IPv6"),
        ("zmq+sentinel://[::1]:26379,[1:2]:26380/m", "not an IPv6 address in brackets"),
        ("zmq+redis://[::1:6379/0", "IPv6"),
        ("zmq+sentinel://[::1]:26379,[::1:26380/m", "IPv6"),
    ],
)
def test_a_malformed_redis_host_is_refused(url, problem):
    with pytest.raises(ConfigurationError, match=problem):
        parse_url(url)


def test_redis_and_sentinel_at_ipv6_addresses():
    assert parse_url("zmq+redis://[::1]:7000/3").matchmaker.location == "[::1]:7000/3"
    sentinel = parse_url("zmq+sentinel://[fd00::1]:26379,[fd00::2]/m").matchmaker
    assert sentinel.location == "[fd00::1]:26379,[fd00::2]:26379/m"


@pytest.mark.parametrize(
    ("host", "port", "endpoint"),
    [
        ("127.0.0.1", 5, "tcp://127.0.0.1:5"),
        ("::1", 5, "tcp://[::1]:5"),
        ("*", 0, "tcp://*:0"),
        ("::", None, "tcp://[::]"),
        ("node-1", None, "tcp://node-1"),
    ],
)
def test_tcp_endpoint_brackets_ipv6(host, port, endpoint):
    assert tcp_endpoint(host, port) == endpoint


@pytest.mark.parametrize(
    ("bound", "host", "advertised"),
    [
        ("tcp://[::1]:4000", None, "tcp://[::1]:4000"),
        ("tcp://[fe80::1%lo]:4000", None, "tcp://[fe80::1%lo]:4000"),
        # libzmq reports IPv4 as IPv4-mapped on a socket with ZMQ_IPV6: peers
        # without IPv6 (and older versions) need the plain form.
        ("tcp://[::ffff:127.0.0.1]:4000", None, "tcp://127.0.0.1:4000"),
        ("tcp://10.0.0.5:4000", None, "tcp://10.0.0.5:4000"),
        ("tcp://[::1]:4000", "fd00::9", "tcp://[fd00::9]:4000"),
        ("tcp://[::]:4000", "node-1.example", "tcp://node-1.example:4000"),
    ],
)
def test_advertised_endpoint(bound, host, advertised):
    assert advertised_endpoint(bound, host) == advertised


def _resolver(*addresses: str):
    def getaddrinfo(name, port, family=0, kind=0):  # noqa: ARG001 - socket.getaddrinfo's signature
        found = []
        for address in addresses:
            is_v6 = ":" in address
            if family in {socket.AF_UNSPEC, socket.AF_INET6 if is_v6 else socket.AF_INET}:
                family_of = socket.AF_INET6 if is_v6 else socket.AF_INET
                found.append((family_of, kind, 6, "", (address, 0)))
        if not found:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return found

    return getaddrinfo


@pytest.mark.parametrize(
    ("bound", "addresses", "advertised"),
    [
        # "::" takes both families: the resolver's first that is not loopback.
        ("tcp://[::]:1", ("127.0.1.1", "fd00::5", "10.0.0.5"), "tcp://[fd00::5]:1"),
        ("tcp://[::]:1", ("10.0.0.5", "fd00::5"), "tcp://10.0.0.5:1"),
        # "0.0.0.0" (IPv4-mapped on an IPv6 socket) only IPv4.
        ("tcp://[::ffff:0.0.0.0]:1", ("fd00::5", "10.0.0.5"), "tcp://10.0.0.5:1"),
        ("tcp://0.0.0.0:1", ("fd00::5", "127.0.1.1"), "tcp://127.0.1.1:1"),
        # Nothing of the right family: the host name, for peers to resolve.
        ("tcp://0.0.0.0:1", ("fd00::5",), "tcp://this-machine:1"),
    ],
)
def test_a_wildcard_advertises_an_address_of_the_family_it_accepts(
    monkeypatch, bound, addresses, advertised
):
    monkeypatch.setattr(socket, "gethostname", lambda: "this-machine")
    monkeypatch.setattr(socket, "getaddrinfo", _resolver(*addresses))
    assert advertised_endpoint(bound, None) == advertised
    assert _addresses.wildcard_host(ipv6="[::]" in bound) == advertised[6:-2].strip("[]")


@pytest.mark.parametrize(
    ("given", "shown"),
    [
        ("::ffff:10.0.0.5", "10.0.0.5"),
        ("::1", "::1"),
        ("fd00::5", "fd00::5"),
        ("10.0.0.5", "10.0.0.5"),
        ("not an address", "not an address"),
    ],
)
def test_a_peer_address_is_shown_in_its_own_family(given, shown):
    assert peer_address(given) == shown


@pytest.mark.parametrize(
    ("bound", "loopback"),
    [
        ("tcp://127.0.0.1:5000", True),
        ("tcp://127.8.9.10:5000", True),
        ("tcp://[::1]:5000", True),
        ("tcp://[::ffff:127.0.0.1]:5000", True),
        ("tcp://0.0.0.0:5000", False),
        ("tcp://[::]:5000", False),
        ("tcp://10.0.0.5:5000", False),
        ("tcp://[fe80::1]:5000", False),
        ("tcp://localhost:5000", False),
        ("not an endpoint", False),
    ],
)
def test_only_loopback_endpoints_are_loopback(bound, loopback):
    assert is_loopback_endpoint(bound) is loopback
