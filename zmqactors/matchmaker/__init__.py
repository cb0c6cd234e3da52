"""Discovery backends behind one small interface, and a factory that picks one.

- `MemoryMatchmaker`: one process (``zmq+memory://``), for tests.
- `FileMatchmaker`: the processes of one host, through a directory (``zmq://``).
- redis / sentinel: several hosts; not available yet.
"""

from __future__ import annotations

from zmqactors.errors import ConfigurationError
from zmqactors.matchmaker.base import Matchmaker, Route
from zmqactors.matchmaker.file import FileMatchmaker
from zmqactors.matchmaker.memory import MemoryMatchmaker

__all__ = [
    "FileMatchmaker",
    "Matchmaker",
    "MemoryMatchmaker",
    "Route",
    "create_matchmaker",
]

_KINDS = ("file", "memory", "redis", "sentinel")


def create_matchmaker(
    kind: str,
    location: str,
    password: str | None = None,  # noqa: ARG001 - read by the redis backends, which come later
) -> Matchmaker:
    """Build the matchmaker of ``kind`` at ``location``; any thread.

    ``location`` is the store's name for ``"memory"`` and the directory for
    ``"file"``. ``password`` is for the network backends; the local ones ignore
    it, so one configuration can switch between backends.

    Raises `ConfigurationError` naming the value for an unknown or unavailable
    kind or a bad location.
    """
    match kind:
        case "memory":
            return MemoryMatchmaker(location)
        case "file":
            return FileMatchmaker(location)
        case "redis" | "sentinel":
            msg = (
                f"the redis matchmaker is not available yet (kind={kind!r}); use 'memory' or 'file'"
            )
            raise ConfigurationError(msg)
        case _:
            msg = f"unknown matchmaker kind {kind!r}; expected one of {', '.join(_KINDS)}"
            raise ConfigurationError(msg)
