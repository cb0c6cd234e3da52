"""Tests of the matchmaker backends: behaviour shared by all, then each one's own."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers import give_away, wait_until
from zmqactors.errors import ConfigurationError, SecurityError
from zmqactors.matchmaker import (
    FileMatchmaker,
    Matchmaker,
    MemoryMatchmaker,
    Route,
    create_matchmaker,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

pytestmark = pytest.mark.unit

REPO_ROOT = Path(__file__).resolve().parents[2]
KEY = "default/compute"
LONG_TTL = 60.0
TIMEOUT = 30.0


def unique_name() -> str:
    return f"test-{uuid.uuid4().hex}"


@pytest.fixture(params=["memory", "file"])
def make_matchmaker(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Callable[[], Matchmaker]]:
    """Build matchmakers that share one store: one fresh store per test."""
    name = unique_name()
    made: list[Matchmaker] = []

    def make() -> Matchmaker:
        mm: Matchmaker = (
            MemoryMatchmaker(name) if request.param == "memory" else FileMatchmaker(tmp_path / "mm")
        )
        made.append(mm)
        return mm

    yield make
    for mm in made:
        mm.close()


@pytest.fixture
def mm(make_matchmaker: Callable[[], Matchmaker]) -> Matchmaker:
    return make_matchmaker()


def addresses(routes: tuple[Route, ...]) -> list[tuple[str, str]]:
    return [(route.server, route.address) for route in routes]


# --- behaviour common to every backend ---------------------------------------


def test_lookup_of_unknown_key_is_empty(mm: Matchmaker) -> None:
    assert mm.lookup(KEY) == ()


def test_register_lookup_unregister(mm: Matchmaker) -> None:
    before = time.time()
    mm.register(KEY, "node-1", "tcp://127.0.0.1:5555", LONG_TTL)

    (route,) = mm.lookup(KEY)
    assert (route.server, route.address) == ("node-1", "tcp://127.0.0.1:5555")
    assert before + LONG_TTL <= route.expires <= time.time() + LONG_TTL

    mm.unregister(KEY, "node-1", "tcp://127.0.0.1:5555")
    assert mm.lookup(KEY) == ()


def test_unregister_of_absent_route_is_not_an_error(mm: Matchmaker) -> None:
    mm.unregister(KEY, "node-1", "tcp://127.0.0.1:5555")
    mm.register(KEY, "node-1", "tcp://127.0.0.1:5555", LONG_TTL)
    mm.unregister(KEY, "node-1", "tcp://127.0.0.1:6666")
    mm.unregister("other/compute", "node-1", "tcp://127.0.0.1:5555")
    assert addresses(mm.lookup(KEY)) == [("node-1", "tcp://127.0.0.1:5555")]


def test_results_are_sorted_by_server_then_address(mm: Matchmaker) -> None:
    routes = [
        ("node-b", "tcp://127.0.0.1:2"),
        ("node-a", "tcp://127.0.0.1:9"),
        ("node-c", "tcp://127.0.0.1:1"),
        ("node-a", "tcp://127.0.0.1:10"),
        ("node-b", "tcp://127.0.0.1:1"),
    ]
    for server, address in routes:
        mm.register(KEY, server, address, LONG_TTL)
    assert addresses(mm.lookup(KEY)) == sorted(routes)


def test_reregister_refreshes_the_expiry_without_duplicating(mm: Matchmaker) -> None:
    mm.register(KEY, "node-1", "tcp://127.0.0.1:5555", 5.0)
    (first,) = mm.lookup(KEY)
    mm.register(KEY, "node-1", "tcp://127.0.0.1:5555", LONG_TTL)
    (second,) = mm.lookup(KEY)
    assert second.expires > first.expires + LONG_TTL - 5.0 - 1.0


def test_several_servers_and_addresses_per_key(mm: Matchmaker) -> None:
    mm.register(KEY, "node-1", "tcp://127.0.0.1:1", LONG_TTL)
    mm.register(KEY, "node-1", "tcp://127.0.0.1:2", LONG_TTL)
    mm.register(KEY, "node-2", "tcp://127.0.0.1:1", LONG_TTL)

    assert addresses(mm.lookup(KEY)) == [
        ("node-1", "tcp://127.0.0.1:1"),
        ("node-1", "tcp://127.0.0.1:2"),
        ("node-2", "tcp://127.0.0.1:1"),
    ]
    mm.unregister(KEY, "node-1", "tcp://127.0.0.1:1")
    assert addresses(mm.lookup(KEY)) == [
        ("node-1", "tcp://127.0.0.1:2"),
        ("node-2", "tcp://127.0.0.1:1"),
    ]


def test_keys_are_isolated(mm: Matchmaker) -> None:
    keys = ["default/a", "default/a.b", "other/a", "default/A", "default/a/b", "default.a/b"]
    for index, key in enumerate(keys):
        mm.register(key, f"server-{index}", f"tcp://127.0.0.1:{index}", LONG_TTL)
    for index, key in enumerate(keys):
        assert addresses(mm.lookup(key)) == [(f"server-{index}", f"tcp://127.0.0.1:{index}")]
    mm.unregister("default/a", "server-0", "tcp://127.0.0.1:0")
    assert mm.lookup("default/a") == ()
    assert len(mm.lookup("default/a.b")) == 1


def test_names_with_every_allowed_character_and_maximal_length(mm: Matchmaker) -> None:
    name = "AZaz09_.@:#+=~-"
    long_name = "x" * 255
    routes = [
        (f"{name}/{name}", name, "tcp://[::1]:5555"),
        (f"{long_name}/{long_name}", long_name, "tcp://" + "h" * 250 + ":1"),
        (f"{long_name}/{long_name}", name, "tcp://127.0.0.1:1"),
    ]
    for key, server, address in routes:
        mm.register(key, server, address, LONG_TTL)
    assert addresses(mm.lookup(f"{name}/{name}")) == [(name, "tcp://[::1]:5555")]
    assert addresses(mm.lookup(f"{long_name}/{long_name}")) == sorted(
        [(long_name, "tcp://" + "h" * 250 + ":1"), (name, "tcp://127.0.0.1:1")]
    )


def test_instances_on_one_store_see_each_other(make_matchmaker: Callable[[], Matchmaker]) -> None:
    server_side, client_side = make_matchmaker(), make_matchmaker()
    server_side.register(KEY, "node-1", "tcp://127.0.0.1:5555", LONG_TTL)
    assert addresses(client_side.lookup(KEY)) == [("node-1", "tcp://127.0.0.1:5555")]
    server_side.unregister(KEY, "node-1", "tcp://127.0.0.1:5555")
    assert client_side.lookup(KEY) == ()


def test_expired_routes_are_skipped(mm: Matchmaker) -> None:
    short_ttl = 0.2
    registered_at = time.monotonic()
    mm.register(KEY, "short", "tcp://127.0.0.1:1", short_ttl)
    mm.register(KEY, "long", "tcp://127.0.0.1:2", LONG_TTL)
    found = addresses(mm.lookup(KEY))
    if time.monotonic() - registered_at < short_ttl:
        assert found == [("long", "tcp://127.0.0.1:2"), ("short", "tcp://127.0.0.1:1")]

    wait_until(lambda: addresses(mm.lookup(KEY)) == [("long", "tcp://127.0.0.1:2")], timeout=5.0)
    assert all(route.expires > time.time() for route in mm.lookup(KEY))


def test_expired_route_comes_back_when_registered_again(mm: Matchmaker) -> None:
    mm.register(KEY, "node-1", "tcp://127.0.0.1:1", 0.05)
    wait_until(lambda: mm.lookup(KEY) == (), timeout=5.0)
    mm.register(KEY, "node-1", "tcp://127.0.0.1:1", LONG_TTL)
    assert addresses(mm.lookup(KEY)) == [("node-1", "tcp://127.0.0.1:1")]


@pytest.mark.parametrize("ttl", [0, -1.0, math.nan, math.inf, -math.inf])
def test_register_refuses_a_bad_ttl(mm: Matchmaker, ttl: float) -> None:
    with pytest.raises(ValueError, match="ttl"):
        mm.register(KEY, "node-1", "tcp://127.0.0.1:1", ttl)
    assert mm.lookup(KEY) == ()


def test_close_is_idempotent(mm: Matchmaker) -> None:
    mm.close()
    mm.close()


def test_concurrent_threads_lose_no_route(make_matchmaker: Callable[[], Matchmaker]) -> None:
    threads_count, per_thread = 8, 50
    barrier = threading.Barrier(threads_count + 1)
    errors: list[BaseException] = []
    stop_reading = threading.Event()

    def writer(index: int) -> None:
        mm = make_matchmaker()
        try:
            barrier.wait(timeout=TIMEOUT)
            for n in range(per_thread):
                mm.register(KEY, f"server-{index}", f"tcp://127.0.0.1:{n}", LONG_TTL)
                # Refreshing one route from every thread races on the same entry.
                mm.register(KEY, "shared", "tcp://127.0.0.1:1", LONG_TTL)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    def reader() -> None:
        mm = make_matchmaker()
        try:
            barrier.wait(timeout=TIMEOUT)
            while not stop_reading.is_set():
                routes = mm.lookup(KEY)
                assert list(routes) == sorted(routes, key=lambda r: (r.server, r.address))
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    writers = [threading.Thread(target=writer, args=(i,)) for i in range(threads_count)]
    reading = threading.Thread(target=reader)
    for thread in [*writers, reading]:
        thread.start()
    for thread in writers:
        thread.join(timeout=TIMEOUT)
    stop_reading.set()
    reading.join(timeout=TIMEOUT)

    assert not any(thread.is_alive() for thread in [*writers, reading])
    assert errors == []
    expected = {
        (f"server-{i}", f"tcp://127.0.0.1:{n}")
        for i in range(threads_count)
        for n in range(per_thread)
    } | {("shared", "tcp://127.0.0.1:1")}
    found = addresses(make_matchmaker().lookup(KEY))
    assert len(found) == len(expected)
    assert set(found) == expected


_names = st.text(alphabet="AZaz09_.@:#+=~-", min_size=1, max_size=120)
_routes = st.sets(
    st.tuples(
        st.tuples(_names, _names).map("/".join),
        _names,
        _names.map(lambda host: f"tcp://{host}:1"),
    ),
    max_size=8,
)


@settings(max_examples=40, deadline=None)
@given(routes=_routes)
def test_any_set_of_routes_reads_back_exactly(routes: set[tuple[str, str, str]]) -> None:
    with tempfile.TemporaryDirectory() as directory:
        for mm in (MemoryMatchmaker(unique_name()), FileMatchmaker(directory)):
            for key, server, address in routes:
                mm.register(key, server, address, LONG_TTL)
            for key in {key for key, _, _ in routes}:
                expected = sorted((s, a) for k, s, a in routes if k == key)
                assert addresses(mm.lookup(key)) == expected
            for key, server, address in routes:
                mm.unregister(key, server, address)
            assert all(mm.lookup(key) == () for key, _, _ in routes)


# --- memory backend ------------------------------------------------------------


def test_memory_stores_with_different_names_are_isolated() -> None:
    first, second = MemoryMatchmaker(unique_name()), MemoryMatchmaker(unique_name())
    first.register(KEY, "node-1", "tcp://127.0.0.1:1", LONG_TTL)
    assert second.lookup(KEY) == ()
    assert len(first.lookup(KEY)) == 1
    first.unregister(KEY, "node-1", "tcp://127.0.0.1:1")


def test_memory_store_outlives_the_instance_that_registered() -> None:
    name = unique_name()
    MemoryMatchmaker(name).register(KEY, "node-1", "tcp://127.0.0.1:1", LONG_TTL)
    assert len(MemoryMatchmaker(name).lookup(KEY)) == 1
    MemoryMatchmaker(name).unregister(KEY, "node-1", "tcp://127.0.0.1:1")


# --- file backend ----------------------------------------------------------------


def key_dirs(root: Path) -> list[Path]:
    return [path for path in root.iterdir() if path.is_dir()]


def test_file_directory_is_created_private(tmp_path: Path) -> None:
    directory = tmp_path / "a" / "b"
    FileMatchmaker(str(directory))
    assert directory.is_dir()
    assert directory.stat().st_mode & 0o077 == 0


def test_file_relative_directory_is_made_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    mm = FileMatchmaker("routes")
    assert mm.directory == tmp_path / "routes"


def test_file_directory_that_is_a_regular_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "not-a-directory"
    path.write_text("x")
    with pytest.raises(ConfigurationError, match=r"not-a-directory.*not a directory"):
        FileMatchmaker(str(path))
    with pytest.raises(ConfigurationError, match="cannot be created"):
        FileMatchmaker(str(path / "below"))


def test_file_empty_directory_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="empty"):
        FileMatchmaker("")


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root may write anywhere")
def test_file_unwritable_directory_is_refused(tmp_path: Path) -> None:
    directory = tmp_path / "read-only"
    directory.mkdir(mode=0o500)
    try:
        with pytest.raises(ConfigurationError, match="not writable"):
            FileMatchmaker(str(directory))
    finally:
        directory.chmod(0o700)


def test_file_corrupt_and_foreign_files_are_skipped(tmp_path: Path) -> None:
    mm = FileMatchmaker(tmp_path)
    mm.register(KEY, "node-1", "tcp://127.0.0.1:1", LONG_TTL)
    (key_dir,) = key_dirs(tmp_path)
    (good,) = key_dir.iterdir()
    good_content = json.loads(good.read_bytes())

    (key_dir / "r.partial.route").write_bytes(good.read_bytes()[:20])
    (key_dir / "r.empty.route").write_bytes(b"")
    (key_dir / "r.wrong-shape.route").write_text(json.dumps({"server": 1}))
    (key_dir / "r.not-json.route").write_bytes(b"\xff\xfe garbage")
    (key_dir / "r.huge.route").write_bytes(b" " * 100_000)
    (key_dir / "r.subdirectory").mkdir()
    # Valid content under a name it does not belong to: a reader cannot trust it.
    (key_dir / "r.misplaced.route").write_text(json.dumps({**good_content, "server": "intruder"}))
    (key_dir / ".tmp.1.2.half-written").write_bytes(b'{"key": "def')

    assert addresses(mm.lookup(KEY)) == [("node-1", "tcp://127.0.0.1:1")]
    mm.register(KEY, "node-2", "tcp://127.0.0.1:2", LONG_TTL)
    assert addresses(mm.lookup(KEY)) == [
        ("node-1", "tcp://127.0.0.1:1"),
        ("node-2", "tcp://127.0.0.1:2"),
    ]


def test_file_long_expired_and_abandoned_files_are_removed(tmp_path: Path) -> None:
    mm = FileMatchmaker(tmp_path)
    mm.register(KEY, "recent", "tcp://127.0.0.1:1", LONG_TTL)
    mm.register(KEY, "long-gone", "tcp://127.0.0.1:2", LONG_TTL)
    (key_dir,) = key_dirs(tmp_path)
    files = {json.loads(path.read_bytes())["server"]: path for path in key_dir.iterdir()}

    # Expired a moment ago: skipped but kept, its owner may be about to refresh it.
    recent = json.loads(files["recent"].read_bytes())
    files["recent"].write_text(json.dumps({**recent, "expires": time.time() - 1}))
    # Expired long ago: nobody refreshes it any more.
    gone = json.loads(files["long-gone"].read_bytes())
    files["long-gone"].write_text(json.dumps({**gone, "expires": time.time() - 120}))
    old = time.time() - 120
    stale_tmp = key_dir / ".tmp.99.99.abandoned"
    stale_tmp.write_bytes(b"{")
    fresh_tmp = key_dir / ".tmp.98.98.in-progress"
    fresh_tmp.write_bytes(b"{")
    corrupt = key_dir / "r.corrupt.route"
    corrupt.write_bytes(b"{")
    unrelated = key_dir / ".nfs0001"
    unrelated.write_bytes(b"")
    for path in (stale_tmp, corrupt, unrelated):
        os.utime(path, (old, old))

    assert mm.lookup(KEY) == ()
    assert files["recent"].exists()
    assert not files["long-gone"].exists()
    assert not stale_tmp.exists()
    assert fresh_tmp.exists()
    assert not corrupt.exists()
    assert unrelated.exists()


def test_file_unregister_removes_the_file(tmp_path: Path) -> None:
    mm = FileMatchmaker(tmp_path)
    mm.register(KEY, "node-1", "tcp://127.0.0.1:1", LONG_TTL)
    mm.unregister(KEY, "node-1", "tcp://127.0.0.1:1")
    (key_dir,) = key_dirs(tmp_path)
    assert list(key_dir.iterdir()) == []


def test_file_register_recreates_a_removed_directory(tmp_path: Path) -> None:
    directory = tmp_path / "routes"
    mm = FileMatchmaker(directory)
    directory.rmdir()
    mm.register(KEY, "node-1", "tcp://127.0.0.1:1", LONG_TTL)
    assert len(mm.lookup(KEY)) == 1
    assert directory.stat().st_mode & 0o077 == 0


def test_file_names_are_case_insensitive_safe(tmp_path: Path) -> None:
    mm = FileMatchmaker(tmp_path)
    mm.register("default/a", "Node", "tcp://h:1", LONG_TTL)
    mm.register("default/A", "node", "tcp://H:1", LONG_TTL)
    names = [path.name for path in tmp_path.rglob("*")]
    assert len({name.lower() for name in names}) == len(names) == 4


_CHILD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from zmqactors.matchmaker import FileMatchmaker

    directory, index, go = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    deadline = time.monotonic() + 30
    while not go.exists():
        if time.monotonic() > deadline:
            sys.exit("never told to start")
        time.sleep(0.005)
    mm = FileMatchmaker(directory)
    for n in range(200):
        mm.register("default/mp", f"proc-{index}", f"tcp://127.0.0.1:{n}", 60)
        mm.register("default/mp", "shared", "tcp://127.0.0.1:1", 60)
        routes = mm.lookup("default/mp")
        assert list(routes) == sorted(routes, key=lambda r: (r.server, r.address))
    """
)


def test_file_two_processes_registering_concurrently_lose_nothing(tmp_path: Path) -> None:
    directory = tmp_path / "routes"
    go = tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    children = [
        subprocess.Popen(
            [sys.executable, "-c", _CHILD, str(directory), str(index), str(go)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for index in range(2)
    ]
    try:
        go.touch()
        results = [child.communicate(timeout=60) for child in children]
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait(timeout=TIMEOUT)

    for child, (stdout, stderr) in zip(children, results, strict=True):
        assert child.returncode == 0, stderr.decode()
        # Writes are atomic, so no reader may ever have met a half-written file.
        assert b"corrupt" not in stdout + stderr
    expected = {(f"proc-{i}", f"tcp://127.0.0.1:{n}") for i in range(2) for n in range(200)}
    expected.add(("shared", "tcp://127.0.0.1:1"))
    found = addresses(FileMatchmaker(directory).lookup("default/mp"))
    assert len(found) == len(expected)
    assert set(found) == expected
    assert list(directory.rglob(".tmp*")) == []


# --- factory -------------------------------------------------------------------------


def test_factory_builds_the_local_backends(tmp_path: Path) -> None:
    name = unique_name()
    memory = create_matchmaker("memory", name)
    assert isinstance(memory, MemoryMatchmaker)
    memory.register(KEY, "node-1", "tcp://127.0.0.1:1", LONG_TTL)
    assert len(MemoryMatchmaker(name).lookup(KEY)) == 1
    memory.unregister(KEY, "node-1", "tcp://127.0.0.1:1")

    file = create_matchmaker("file", str(tmp_path), password="ignored")  # noqa: S106 - a dummy, not a secret
    assert isinstance(file, FileMatchmaker)
    assert file.directory == tmp_path


def test_factory_names_an_unknown_kind() -> None:
    with pytest.raises(ConfigurationError, match="'consul'") as info:
        create_matchmaker("consul", "somewhere")
    assert isinstance(info.value, ValueError)


def test_file_factory_with_a_bad_directory_names_it(tmp_path: Path) -> None:
    path = tmp_path / "plain-file"
    path.write_text("")
    with pytest.raises(ConfigurationError, match="plain-file"):
        create_matchmaker("file", str(path))


@pytest.mark.parametrize("kind", ["memory", "file"])
def test_entries_lists_every_live_route(kind, tmp_path):
    backend = (
        MemoryMatchmaker(uuid.uuid4().hex) if kind == "memory" else FileMatchmaker(tmp_path / "mm")
    )
    backend.register("default/b", "s2", "tcp://h:2", 30)
    backend.register("default/a", "s1", "tcp://h:1", 30)
    backend.register("notify/default/a", "id:pool", "tcp://h:3", 30)
    backend.register("default/gone", "s9", "tcp://h:9", 30)
    backend.unregister("default/gone", "s9", "tcp://h:9")
    entries = backend.entries()
    assert [(key, route.server, route.address) for key, route in entries] == [
        ("default/a", "s1", "tcp://h:1"),
        ("default/b", "s2", "tcp://h:2"),
        ("notify/default/a", "id:pool", "tcp://h:3"),
    ]


# --- file backend: strict files (issue #12, row 4) -------------------------------


class BadRoutes:
    """Counts what a FileMatchmaker reports through on_bad_route."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> None:
        self.count += 1


def plant(mm: FileMatchmaker, server: str, address: str, expires: float) -> Path:
    """Write a well-formed route file by hand, as an attacker with write access would."""
    # The matchmaker's own naming and format, so only the expiry gives the route away.
    mm.register(KEY, server, address, LONG_TTL)
    (key_dir,) = key_dirs(mm.directory)
    for path in key_dir.iterdir():
        content = json.loads(path.read_bytes())
        if (content["server"], content["address"]) == (server, address):
            path.write_text(json.dumps({**content, "expires": expires}))
            return path
    raise AssertionError(server)


def test_file_route_expiring_beyond_the_ttl_is_ignored_and_counted(tmp_path: Path) -> None:
    bad = BadRoutes()
    mm = FileMatchmaker(tmp_path / "mm", max_ttl=LONG_TTL, on_bad_route=bad)
    plant(mm, "attacker", "tcp://127.0.0.1:6666", 1e300)
    mm.register(KEY, "honest", "tcp://127.0.0.1:1", LONG_TTL)

    assert addresses(mm.lookup(KEY)) == [("honest", "tcp://127.0.0.1:1")]
    assert bad.count == 1
    assert [key for key, _ in mm.entries()] == [KEY]
    # Within the TTL a hand-written route is an ordinary one.
    plant(mm, "attacker", "tcp://127.0.0.1:6666", time.time() + LONG_TTL / 2)
    assert ("attacker", "tcp://127.0.0.1:6666") in addresses(mm.lookup(KEY))


def test_file_default_max_ttl_is_bounded(tmp_path: Path) -> None:
    mm = FileMatchmaker(tmp_path / "mm")
    plant(mm, "attacker", "tcp://127.0.0.1:6666", 1e300)
    assert mm.lookup(KEY) == ()


def test_file_factory_takes_the_transport_ttl(tmp_path: Path) -> None:
    bad = BadRoutes()
    mm = create_matchmaker("file", str(tmp_path / "mm"), max_ttl=5.0, on_bad_route=bad)
    assert isinstance(mm, FileMatchmaker)
    plant(mm, "later", "tcp://127.0.0.1:2", time.time() + 30)
    assert mm.lookup(KEY) == ()
    assert bad.count == 1


def test_file_symlinked_key_directory_is_neither_read_nor_cleaned(tmp_path: Path) -> None:
    bad = BadRoutes()
    mm = FileMatchmaker(tmp_path / "mm", on_bad_route=bad)
    victim = tmp_path / "victim"
    donor = FileMatchmaker(tmp_path / "donor")
    donor.register(KEY, "elsewhere", "tcp://127.0.0.1:3", LONG_TTL)
    (donor_dir,) = key_dirs(donor.directory)
    donor_dir.rename(victim)
    (route_file,) = victim.iterdir()
    # Old enough that a reader would delete them were they in its own directory.
    route_file.write_text(json.dumps({**json.loads(route_file.read_bytes()), "expires": 1.0}))
    precious = victim / ".tmp.1.1.precious"
    precious.write_bytes(b"keep me")
    old = time.time() - 3600
    os.utime(precious, (old, old))
    link = mm.directory / donor_dir.name
    link.symlink_to(victim, target_is_directory=True)

    assert mm.lookup(KEY) == ()
    assert mm.entries() == ()
    assert bad.count >= 1
    assert route_file.exists()
    assert precious.exists()
    # A registration refuses to write through the link, and leaves the target alone.
    with pytest.raises(OSError, match=r"link|directory"):
        mm.register(KEY, "node-1", "tcp://127.0.0.1:1", LONG_TTL)
    mm.unregister(KEY, "elsewhere", "tcp://127.0.0.1:3")
    assert sorted(path.name for path in victim.iterdir()) == sorted(
        [route_file.name, precious.name]
    )


def test_file_symlinked_route_file_is_neither_read_nor_deleted_through(tmp_path: Path) -> None:
    bad = BadRoutes()
    mm = FileMatchmaker(tmp_path / "mm", on_bad_route=bad)
    route_path = plant(mm, "node-1", "tcp://127.0.0.1:1", time.time() + LONG_TTL / 2)
    target = tmp_path / "target.route"
    route_path.rename(target)
    route_path.symlink_to(target)

    assert mm.lookup(KEY) == ()
    assert bad.count == 1
    mm.unregister(KEY, "node-1", "tcp://127.0.0.1:1")
    assert not route_path.is_symlink()
    assert target.exists()
    # A registration replaces the link with a file of its own; the target keeps its content.
    content = target.read_bytes()
    route_path.symlink_to(target)
    mm.register(KEY, "node-1", "tcp://127.0.0.1:1", LONG_TTL)
    assert not route_path.is_symlink()
    assert target.read_bytes() == content
    assert addresses(mm.lookup(KEY)) == [("node-1", "tcp://127.0.0.1:1")]


@pytest.mark.parametrize("mode", [0o770, 0o707, 0o777, 0o720])
def test_file_directory_writable_by_others_is_refused(tmp_path: Path, mode: int) -> None:
    directory = tmp_path / "shared"
    directory.mkdir()
    directory.chmod(mode)
    with pytest.raises(SecurityError, match=rf"'{directory}'.*writable by group or others"):
        FileMatchmaker(directory)
    # Readable by others is fine: only writers can plant routes.
    directory.chmod(0o755)
    FileMatchmaker(directory)


def test_file_directory_owned_by_another_user_is_refused(tmp_path: Path) -> None:
    directory = tmp_path / "theirs"
    directory.mkdir(mode=0o700)
    other = give_away(directory)
    if other is None:
        pytest.skip("only root can give a directory away")
    with pytest.raises(SecurityError, match=rf"'{directory}'.*owned by uid {other}"):
        FileMatchmaker(directory)


def test_file_directory_that_is_a_symlink_is_refused(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    link = tmp_path / "link"
    link.symlink_to(real, target_is_directory=True)
    with pytest.raises(SecurityError, match=rf"'{link}'.*symbolic link"):
        FileMatchmaker(link)
    FileMatchmaker(real)


def test_file_bad_max_ttl_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"max_ttl.*nan"):
        FileMatchmaker(tmp_path, max_ttl=math.nan)


def test_file_fifo_in_place_of_a_route_does_not_block(tmp_path: Path) -> None:
    mm = FileMatchmaker(tmp_path / "mm")
    route_path = plant(mm, "node-1", "tcp://127.0.0.1:1", time.time() + LONG_TTL / 2)
    route_path.unlink()
    os.mkfifo(route_path)
    assert mm.lookup(KEY) == ()
