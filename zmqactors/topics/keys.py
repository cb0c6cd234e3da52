"""Every wire and matchmaker key derived from a `Target`, in one place.

Keys join validated names with ``/``, which names cannot contain, so two
different targets never share a key.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from zmqactors.topics._target import Target

__all__ = ["matchmaker_key", "notification_key", "version_compatible"]


def matchmaker_key(target: Target) -> str:
    """The key under which the servers of ``target``'s (exchange, topic) register.

    The server name is not part of the key: a route carries it, so one lookup
    answers both "any server of the topic" and "this one server".
    """
    return f"{target.exchange_name}/{target.topic}"


def notification_key(target: Target) -> str:
    """The key under which notification listeners of ``target``'s (exchange, topic) register.

    Three parts where RPC keys have two, so the two kinds never share a key.
    """
    return f"notify/{target.exchange_name}/{target.topic}"


def version_compatible(served: str | None, requested: str | None) -> bool:
    """Whether an endpoint serving ``served`` can answer a call asking for ``requested``.

    Same major version, and the served minor at least the requested one. No
    requested version is served by anything; no served version means "1.0".
    """
    if requested is None:
        return True
    s_major, s_minor = _split(served or "1.0")
    r_major, r_minor = _split(requested)
    return s_major == r_major and s_minor >= r_minor


def _split(version: str) -> tuple[int, int]:
    major, _, minor = version.partition(".")
    return int(major), int(minor or 0)
