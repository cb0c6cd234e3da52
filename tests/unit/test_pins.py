"""ServerKeyPins: which routes a client with pinned server keys may use (no sockets)."""

from __future__ import annotations

import pytest

from zmqactors.core.pins import ServerKeyPins
from zmqactors.matchmaker import Route

pytestmark = pytest.mark.unit

A, B, EVIL = "a" * 40, "b" * 40, "e" * 40
PINS = ServerKeyPins({"node-a": A, "node-b": B}, "/pins")


def route(server: str, key: str | None) -> Route:
    return Route(server, "tcp://127.0.0.1:1", 1e9, key)


@pytest.mark.parametrize(
    ("server", "key", "trusted"),
    [
        ("node-a", A, True),
        ("node-b", B, True),
        # A pinned name accepts only its own key, even another pinned one.
        ("node-a", B, False),
        ("node-a", EVIL, False),
        # Other names: any pinned key, nothing else.
        ("node-c", A, True),
        ("node-c", EVIL, False),
        # Without a key nothing is trusted.
        ("node-a", None, False),
        ("node-c", None, False),
    ],
)
def test_a_route_is_trusted_only_with_its_pinned_key(server, key, trusted):
    assert PINS.trusts(route(server, key)) is trusted


def test_the_keys_are_every_pinned_key():
    assert PINS.keys == {A, B}
