"""The matchmaker actor: a failing backend, one back empty, pushed changes, batched refreshes."""

from __future__ import annotations

import threading
import time
import uuid
from typing import TYPE_CHECKING

import pytest

from tests.helpers import wait_until
from zmqactors.actors.matchmaker import MatchmakerActor
from zmqactors.actors.messages import Lookup, Register
from zmqactors.core.routes import RouteCache
from zmqactors.core.stats import Stats
from zmqactors.matchmaker.memory import MemoryMatchmaker

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from zmqactors.matchmaker import Route

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


class Pushing:
    """A memory backend with a watch the test fires, and a batched refresh it counts."""

    def __init__(self) -> None:
        self.inner = MemoryMatchmaker(uuid.uuid4().hex)
        self.notify: Callable[[tuple[str, ...] | None], None] | None = None
        self.lookups: list[str] = []
        self.refreshes: list[int] = []
        self.removals: list[int] = []
        # When set, lookups wait for it (and say so through `held`).
        self.hold: threading.Event | None = None
        self.held = threading.Event()
        self.registers = 0

    def register(self, *args: object) -> None:
        self.registers += 1
        self.inner.register(*args)  # type: ignore[arg-type]

    def unregister(self, *args: object) -> None:
        self.inner.unregister(*args)  # type: ignore[arg-type]

    def lookup(self, key: str) -> tuple[Route, ...]:
        self.lookups.append(key)
        if self.hold is not None:
            self.held.set()
            self.hold.wait(timeout=10)
        return self.inner.lookup(key)

    def entries(self) -> tuple[tuple[str, Route], ...]:
        return self.inner.entries()

    def refresh(self, routes: Iterable[tuple[str, str, str, str | None]], ttl: float) -> None:
        batch = list(routes)
        self.refreshes.append(len(batch))
        for key, server, address, server_key in batch:
            self.inner.register(key, server, address, ttl, server_key)

    def unregister_many(self, routes: Iterable[tuple[str, str, str, str | None]]) -> None:
        batch = list(routes)
        self.removals.append(len(batch))
        for key, server, address, server_key in batch:
            self.inner.unregister(key, server, address, server_key)

    def watch(self, notify: Callable[[tuple[str, ...] | None], None]) -> None:
        assert self.notify is None, "watch started twice"
        self.notify = notify

    def close(self) -> None:
        pass


@pytest.fixture
def pushing():
    return Pushing()


@pytest.fixture
def stats():
    return Stats()


@pytest.fixture
def cache():
    return RouteCache()


@pytest.fixture
def pushed_actor(pushing, stats, cache):
    ref = MatchmakerActor.start(lambda: pushing, cache, TTL, stats, 5.0)
    yield ref
    ref.stop(timeout=10)


def test_the_watch_starts_at_the_first_lookup_not_before(pushed_actor, pushing):
    pushed_actor.ask(Register(KEY, "s1", "tcp://127.0.0.1:1"), timeout=10)
    assert pushing.notify is None  # a process that only serves holds no watch
    assert servers(pushed_actor) == ["s1"]
    assert pushing.notify is not None
    assert servers(pushed_actor) == ["s1"]  # started once


def test_a_pushed_change_updates_the_cached_key_at_once(pushed_actor, pushing, cache):
    cache_of = cache.get
    assert servers(pushed_actor) == []
    pushing.inner.register(KEY, "s1", "tcp://127.0.0.1:1", 60)
    assert servers(pushed_actor) == ["s1"]  # not cached while empty: asked again
    pushing.inner.register(KEY, "s2", "tcp://127.0.0.1:2", 60)
    pushing.lookups.clear()
    pushing.notify(("other/key", KEY))
    wait_until(lambda: [r.server for r in cache_of(KEY).routes] == ["s1", "s2"], "s2 pushed")
    assert pushing.lookups == [KEY]  # the key it does not cache is not looked up
    pushing.inner.unregister(KEY, "s1", "tcp://127.0.0.1:1")
    pushing.notify(None)  # maybe anything changed: every cached key again
    wait_until(lambda: [r.server for r in cache_of(KEY).routes] == ["s2"], "s1 gone")


def test_a_burst_of_changes_costs_one_lookup(pushed_actor, pushing):
    pushing.inner.register(KEY, "s1", "tcp://127.0.0.1:1", 60)
    assert servers(pushed_actor) == ["s1"]
    pushing.hold = threading.Event()
    pushing.notify((KEY,))
    assert pushing.held.wait(timeout=10)  # the actor looks KEY up, and waits
    lookups = len(pushing.lookups)
    for _ in range(100):
        pushing.notify((KEY,))
    pushing.hold.set()
    pushing.hold = None
    assert servers(pushed_actor) == ["s1"]  # after the queued changes: a barrier
    # The hundred queued changes made a lookup per batch of messages the
    # actor takes between two polls (a few), not one each; the barrier one more.
    assert 2 <= len(pushing.lookups) - lookups <= 10


def test_registrations_are_refreshed_in_one_batch_and_counted(pushing, stats):
    ref = MatchmakerActor.start(lambda: pushing, RouteCache(), 3.0, stats, 5.0)
    try:
        for index in range(1000):
            ref.tell(Register(KEY, f"s{index}", f"tcp://127.0.0.1:{index + 1}"))
        assert len(ref.ask(Lookup(KEY), timeout=30)) == 1000
        # Refreshed every TTL/3: one request for the thousand, each time.
        wait_until(lambda: len(pushing.refreshes) >= 2, "two refreshes", timeout=10)
    finally:
        ref.stop(timeout=10)
    assert pushing.registers == 1000  # never one by one again
    assert set(pushing.refreshes) == {1000}
    assert pushing.removals == [1000]  # all at once at the stop
    assert pushing.inner.lookup(KEY) == ()
    # A register each, the lookup, one per refresh, and one for the stop.
    commands = 1000 + 1 + len(pushing.refreshes) + 1
    assert stats.snapshot()["matchmaker_commands"] == commands
