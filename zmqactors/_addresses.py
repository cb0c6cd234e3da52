"""Host addresses of both IP families: checking them, writing them into ``tcp://`` endpoints.

Pure functions over the standard library (no zmq); any thread. An IPv6
literal is kept without brackets everywhere (settings, logs, the route's
host) and gets them only inside an endpoint or a ``HOST:PORT`` text:
``tcp://[::1]:4321``, never ``tcp://::1:4321``.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from typing import Final

__all__ = [
    "WILDCARDS",
    "advertised_endpoint",
    "check_host",
    "host_port",
    "is_loopback_endpoint",
    "peer_address",
    "tcp_endpoint",
    "wildcard_host",
]

# "*" and "::" bind both families where the system allows; "0.0.0.0" IPv4 only.
WILDCARDS: Final = frozenset({"*", "0.0.0.0", "::"})  # noqa: S104 - compared, never bound
# A host name (RFC 1123 labels, also "_") or a network interface name.
_NAME: Final = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_.])?")
_ENDPOINT: Final = re.compile(r"tcp://(?:\[(?P<ipv6>[^\]]+)\]|(?P<host>[^:]+)):(?P<port>[0-9]+)")


def check_host(option: str, value: str, *, wildcard: bool) -> str:
    """``value`` as a host for ``option``, IPv6 brackets removed; `ValueError` if malformed.

    Accepts an IPv4 literal, an IPv6 literal with or without brackets (a zone
    such as ``%eth0`` included), a host or interface name, and with
    ``wildcard`` the wildcards of `WILDCARDS` (``[::]`` too). The error's
    message names ``option`` and ``value`` and says what is wrong; the
    caller turns it into its own error type.
    """
    inner = value
    if value.startswith("[") or value.endswith("]"):
        if not (value.startswith("[") and value.endswith("]")):
            msg = (
                f"option {option} has unbalanced brackets: {value!r} "
                "(write an IPv6 address as [::1] or ::1)"
            )
            raise ValueError(msg)
        inner = value[1:-1]
        if ":" not in inner:
            msg = f"option {option}: only an IPv6 address goes in brackets, got {value!r}"
            raise ValueError(msg)
    if inner in WILDCARDS:
        if not wildcard:
            msg = f"option {option} must name one host, not the wildcard {value!r}"
            raise ValueError(msg)
        return inner
    if ":" in inner:
        try:
            ipaddress.IPv6Address(inner)
        except ValueError:
            msg = (
                f"option {option} must be an IPv6 address here, got {value!r} "
                "(it has a ':'; a port does not belong in it: see port_min and port_max)"
            )
            raise ValueError(msg) from None
        return inner
    if _NAME.fullmatch(inner) is None:
        msg = f"option {option} must be an IP address or a host name, got {value!r}"
        raise ValueError(msg)
    return inner


def host_port(host: str, port: int) -> str:
    """``host:port``, with an IPv6 literal in brackets (``[::1]:6379``)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def tcp_endpoint(host: str, port: int | None = None) -> str:
    """The ZeroMQ endpoint ``tcp://host:port`` (``tcp://[::1]:port`` for IPv6).

    Without ``port``: ``tcp://host``, as ``bind_to_random_port`` takes it.
    """
    if port is None:
        return f"tcp://[{host}]" if ":" in host else f"tcp://{host}"
    return f"tcp://{host_port(host, port)}"


def peer_address(text: str) -> str:
    """A peer's IP address as a user expects to read it: IPv4-mapped IPv6 ones as IPv4.

    ``"::ffff:10.0.0.5"`` (how a socket with ``ZMQ_IPV6`` sees an IPv4 peer)
    becomes ``"10.0.0.5"``; anything that is no IP address is returned unchanged.
    """
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return text
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return text


def advertised_endpoint(bound: str, host: str | None) -> str:
    """The endpoint peers reach a socket at, from the endpoint libzmq says it bound.

    ``bound`` is the socket's ``LAST_ENDPOINT``. ``host`` (the option) wins
    when set. Else the bound address, an IPv4-mapped IPv6 one (as libzmq
    reports IPv4 on a socket with ``ZMQ_IPV6``) written as IPv4 so peers of
    either family, and older ones, can use it. A wildcard bind is replaced by
    `wildcard_host`'s choice for the family the socket accepts.
    """
    match = _ENDPOINT.fullmatch(bound)
    if match is None:
        msg = f"not a bound tcp:// endpoint: {bound!r}"
        raise ValueError(msg)
    port = int(match["port"])
    if host is not None:
        return tcp_endpoint(host, port)
    bound_host = peer_address(match["ipv6"] or match["host"])
    if bound_host in {"::", "0.0.0.0"}:  # noqa: S104 - compared, never bound
        # "::" accepts both families (libzmq turns IPV6_V6ONLY off); "0.0.0.0"
        # (also "::ffff:0.0.0.0") only IPv4.
        return tcp_endpoint(wildcard_host(ipv6=bound_host == "::"), port)
    return tcp_endpoint(bound_host, port)


def wildcard_host(*, ipv6: bool) -> str:
    """The address to advertise for a wildcard bind: one of this machine's host name's.

    Resolves the host name and takes the first address, in the resolver's
    order (RFC 6724, tuned by ``/etc/gai.conf``), of a family the socket
    accepts (``ipv6``: both, else IPv4 only), preferring addresses that are
    not loopback. If none resolves, the host name itself, for peers to resolve.
    """
    name = socket.gethostname()
    family = socket.AF_UNSPEC if ipv6 else socket.AF_INET
    try:
        found = socket.getaddrinfo(name, None, family, socket.SOCK_STREAM)
    except OSError:
        return name
    addresses = [ipaddress.ip_address(str(info[4][0]).partition("%")[0]) for info in found]
    # min() keeps the first of equals: the resolver's order among non-loopback ones.
    best = min(addresses, key=lambda address: address.is_loopback, default=None)
    return name if best is None else str(best)


def is_loopback_endpoint(bound: str) -> bool:
    """Whether the bound ``tcp://`` endpoint ``bound`` (``LAST_ENDPOINT``) is loopback only.

    A wildcard (``0.0.0.0``, ``::``) or any other address is not; neither is
    anything that does not parse (the safe answer for a warning).
    """
    match = _ENDPOINT.fullmatch(bound)
    if match is None:
        return False
    try:
        address = ipaddress.ip_address(peer_address(match["ipv6"] or match["host"]))
    except ValueError:
        return False
    return address.is_loopback
