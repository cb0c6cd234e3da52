"""`Target`: where a message goes, as a frozen, validated value object."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

__all__ = ["DEFAULT_EXCHANGE", "NAME_PATTERN", "Target", "validate_name"]

DEFAULT_EXCHANGE = "default"

# Letters, digits and the punctuation real deployments put in topics and host
# names ("compute.node-1", "host@backend#pool", "ns:svc"). The slash, white
# space and control characters are refused: "/" separates the parts of every
# key derived from a Target, so a name containing it could alias another target.
NAME_PATTERN = re.compile(r"[A-Za-z0-9_.@:#+=~-]{1,255}")
_VERSION_PATTERN = re.compile(r"[0-9]{1,6}(\.[0-9]{1,6})?")


def validate_name(field: str, value: object) -> str:
    """Return ``value`` if it is a valid name, else raise ``ValueError`` naming ``field``."""
    if not isinstance(value, str):
        msg = f"Target {field} must be a string, got {type(value).__name__} {value!r}"
        raise TypeError(msg)
    if NAME_PATTERN.fullmatch(value) is None:
        msg = (
            f"invalid Target {field} {value!r}: use 1-255 characters from "
            "letters, digits and . _ - @ : # + = ~ (no '/', spaces or control characters)"
        )
        raise ValueError(msg)
    return value


@dataclasses.dataclass(frozen=True, slots=True)
class Target:
    """Where a message goes. Frozen, hashable and validated at construction.

    Which fields matter to whom:

    - ``topic``: clients and servers; servers of one topic share its calls.
    - ``server``: a server's own name (defaults to the transport's host name);
      on a client, send only to that server.
    - ``fanout``: client only; a cast reaches every server of the topic.
    - ``exchange``: isolates applications; the same topic in two exchanges never crosses.
    - ``namespace`` / ``version``: on an endpoint's ``target`` attribute, what it
      serves; on a client, what the call asks for (``"major.minor"``).

    Raises ``ValueError`` naming the field and value for a bad name, ``TypeError``
    for a value of the wrong type.
    """

    topic: str
    server: str | None = None
    fanout: bool = False
    exchange: str | None = None
    namespace: str | None = None
    version: str | None = None

    def __post_init__(self) -> None:
        validate_name("topic", self.topic)
        for field in ("server", "exchange", "namespace"):
            value = getattr(self, field)
            if value is not None:
                validate_name(field, value)
        if not isinstance(self.fanout, bool):
            msg = f"Target fanout must be a bool, got {self.fanout!r}"
            raise TypeError(msg)
        if self.version is not None and not isinstance(self.version, str):
            msg = f"Target version must be a string, got {type(self.version).__name__}"
            raise TypeError(msg)
        if self.version is not None and _VERSION_PATTERN.fullmatch(self.version) is None:
            msg = (
                f"invalid Target version {self.version!r}: use 'major' or 'major.minor', e.g. '1.2'"
            )
            raise ValueError(msg)
        if self.fanout and self.server is not None:
            msg = f"a fanout Target cannot name a server (server={self.server!r})"
            raise ValueError(msg)

    @property
    def exchange_name(self) -> str:
        """The exchange, with the default filled in."""
        return self.exchange if self.exchange is not None else DEFAULT_EXCHANGE

    def evolve(self, **changes: Any) -> Target:
        """Return a copy with ``changes`` applied (validated like a new Target)."""
        return dataclasses.replace(self, **changes)

    def __str__(self) -> str:
        parts = [f"{self.exchange_name}/{self.topic}"]
        if self.server is not None:
            parts.append(f"server={self.server}")
        if self.fanout:
            parts.append("fanout")
        if self.namespace is not None:
            parts.append(f"namespace={self.namespace}")
        if self.version is not None:
            parts.append(f"version={self.version}")
        return " ".join(parts)
