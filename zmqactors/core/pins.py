"""Pinned server keys (like SSH's known_hosts): which routes a client may send to.

Pure: `zmqactors.net.keys.load_server_pins` reads the directory into a
`ServerKeyPins`; `zmqactors.transport.routing.Router` keeps only the routes
it trusts.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping

    from zmqactors.matchmaker import Route

__all__ = ["ServerKeyPins"]


@dataclasses.dataclass(frozen=True, slots=True)
class ServerKeyPins:
    """The server keys a client trusts: each ``NAME.key`` of the directory, by NAME.

    ``directory`` is where they were read, for messages.
    """

    by_name: Mapping[str, str]
    directory: str
    keys: frozenset[str] = dataclasses.field(init=False)

    def __post_init__(self) -> None:
        """Collect the set of every pinned key (any name)."""
        object.__setattr__(self, "keys", frozenset(self.by_name.values()))

    def trusts(self, route: Route) -> bool:
        """Whether ``route`` may be sent to; any thread.

        A route without a key never is; a route of a server that has its own
        ``NAME.key`` only with that key; any other route when its key is one
        of the directory's.
        """
        key = route.server_key
        if key is None:
            return False
        pinned = self.by_name.get(route.server)
        return key == pinned if pinned is not None else key in self.keys
