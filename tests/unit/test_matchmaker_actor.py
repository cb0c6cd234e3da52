"""The matchmaker actor while its backend fails and after it comes back empty."""

from __future__ import annotations

import time
import uuid

import pytest

from zmqactors.actors.matchmaker import MatchmakerActor
from zmqactors.actors.messages import Lookup
from zmqactors.core.routes import RouteCache
from zmqactors.core.stats import Stats
from zmqactors.matchmaker.memory import MemoryMatchmaker

pytestmark = pytest.mark.unit

KEY = "default/compute"
TTL = 0.5  # the actor's matchmaker_ttl: the window after a recovery


class Flaky:
    """A memory backend that can be made to fail, or replaced by an empty one (a restart)."""

    def __init__(self) -> None:
        self.down = False
        self.inner = MemoryMatchmaker(uuid.uuid4().hex)

    def restart_empty(self) -> None:
        self.inner = MemoryMatchmaker(uuid.uuid4().hex)
        self.down = False

    def __getattr__(self, name: str) -> object:
        if self.down and name in {"register", "unregister", "lookup", "entries"}:
            raise ConnectionError("backend down")
        return getattr(self.inner, name)


@pytest.fixture
def backend():
    return Flaky()


@pytest.fixture
def actor(backend):
    ref = MatchmakerActor.start(lambda: backend, RouteCache(), TTL, Stats(), 5.0)
    yield ref
    ref.stop(timeout=10)


def servers(actor) -> list[str]:
    return [route.server for route in actor.ask(Lookup(KEY), timeout=10)]


def test_a_backend_restarted_empty_keeps_known_routes_until_servers_register_again(actor, backend):
    backend.inner.register(KEY, "s1", "tcp://127.0.0.1:1", 60)
    assert servers(actor) == ["s1"]

    backend.down = True
    assert servers(actor) == ["s1"]  # the cached route, while it fails
    backend.restart_empty()
    # It answers again, but has lost s1's registration: s1 is still known.
    assert servers(actor) == ["s1"]
    backend.inner.register(KEY, "s2", "tcp://127.0.0.1:2", 60)
    assert servers(actor) == ["s2", "s1"]
    backend.inner.register(KEY, "s1", "tcp://127.0.0.1:1", 60)
    assert servers(actor) == ["s1", "s2"]  # no duplicate once s1 is back

    # After the window (the TTL) the backend's answer alone counts again.
    backend.inner.unregister(KEY, "s1", "tcp://127.0.0.1:1")
    deadline = time.monotonic() + 10
    while servers(actor) != ["s2"]:
        assert time.monotonic() < deadline, "the recovery window never closed"
        time.sleep(0.05)


def test_without_an_outage_an_unregistered_server_is_forgotten_at_once(actor, backend):
    backend.inner.register(KEY, "s1", "tcp://127.0.0.1:1", 60)
    assert servers(actor) == ["s1"]
    backend.inner.unregister(KEY, "s1", "tcp://127.0.0.1:1")
    assert servers(actor) == []
