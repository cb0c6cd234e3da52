"""Checks the matchmaker backends share: TTLs, ports, ``HOST:PORT`` of network stores."""

from __future__ import annotations

import math

from zmqactors.errors import ConfigurationError

__all__ = ["check_port", "check_ttl", "split_host_port"]


def split_host_port(text: str, default_port: int) -> tuple[str, int]:
    """``("::1", 6379)`` for ``"[::1]:6379"``; raises `ConfigurationError` if malformed."""
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            msg = f"bad host {text!r}: expected [IPV6]:PORT"
            raise ConfigurationError(msg)
        port_text = rest[1:]
    else:
        host, colon, port_text = text.rpartition(":")
        if not colon:
            host, port_text = text, ""
    if port_text and not (port_text.isascii() and port_text.isdigit()):
        msg = f"bad port in {text!r}: expected HOST:PORT"
        raise ConfigurationError(msg)
    port = int(port_text) if port_text else default_port
    if not host:
        msg = f"missing host in {text!r}: expected HOST:PORT"
        raise ConfigurationError(msg)
    check_port(port)
    return host, port


def check_port(port: int) -> None:
    """Raise `ConfigurationError` unless ``port`` is a TCP port (1 to 65535)."""
    if not 1 <= port <= 65535:  # noqa: PLR2004 - the TCP port range
        msg = f"port must be between 1 and 65535, got {port}"
        raise ConfigurationError(msg)


def check_ttl(ttl: float) -> None:
    """Raise ``ValueError`` unless ``ttl`` is a positive finite number of seconds."""
    valid = isinstance(ttl, (int, float)) and not isinstance(ttl, bool)
    if not (valid and math.isfinite(ttl) and ttl > 0):
        msg = f"matchmaker ttl must be a positive finite number of seconds, got {ttl!r}"
        raise ValueError(msg)
