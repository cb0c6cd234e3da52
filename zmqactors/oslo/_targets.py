"""oslo.messaging targets as zmqactors `Target` values and matchmaker keys.

oslo accepts any string as a topic, server, exchange or pool; zmqactors names
are restricted (`zmqactors.topics.NAME_PATTERN`: no ``/``, no spaces). `escape`
maps every oslo name to a valid one, injectively: valid names without ``~``
pass unchanged (``compute``, ``host@backend#pool``, a UUID), every other
character becomes ``~XX`` per UTF-8 byte, and a result longer than 255
characters is shortened with a hash of the whole name.

Only exchange, topic, server and fanout choose where a message goes.
Namespace and version travel in oslo's message dict, where oslo's own
dispatcher checks them, so a mismatch comes back as oslo's own
``UnsupportedVersion``/``NoSuchMethod`` remote error exactly as with RabbitMQ.
"""

from __future__ import annotations

import functools
import hashlib

from zmqactors.topics import Target, notification_key
from zmqactors.topics._target import NAME_PATTERN

__all__ = ["escape", "notification_route_key", "rpc_target"]

_MAX_NAME = 255
_HASH_CHARS = 16


@functools.lru_cache(maxsize=4096)
def escape(name: str) -> str:
    """``name`` as a valid zmqactors name; different names never map to the same one.

    Raises ``ValueError`` for an empty name.
    """
    if not name:
        msg = "an oslo.messaging name (topic, server, exchange, pool) must not be empty"
        raise ValueError(msg)
    if "~" not in name and NAME_PATTERN.fullmatch(name) is not None:
        return name
    escaped = "".join(
        char
        if char != "~" and NAME_PATTERN.fullmatch(char) is not None
        else "".join(f"~{byte:02X}" for byte in char.encode("utf-8", "surrogatepass"))
        for char in name
    )
    if len(escaped) <= _MAX_NAME:
        return escaped
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:_HASH_CHARS]
    # "~H" cannot come out of the escaping above (it writes "~" + two hex digits).
    return f"{escaped[: _MAX_NAME - _HASH_CHARS - 2]}~H{digest}"


@functools.lru_cache(maxsize=4096)
def rpc_target(exchange: str, topic: str, server: str | None, *, fanout: bool) -> Target:
    """The zmqactors `Target` that an oslo RPC target addresses (cached; names escaped).

    ``exchange`` is the oslo target's exchange with the default filled in. A
    fanout target ignores ``server``, as oslo's drivers do.
    """
    return Target(
        escape(topic),
        server=None if fanout or not server else escape(server),
        fanout=fanout,
        exchange=escape(exchange),
    )


@functools.lru_cache(maxsize=4096)
def notification_route_key(exchange: str, topic: str) -> tuple[Target, str]:
    """The target and matchmaker key of oslo's notification topic ``topic`` (``topic.priority``)."""
    target = Target(escape(topic), exchange=escape(exchange))
    return target, notification_key(target)
