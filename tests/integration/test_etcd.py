"""The etcd matchmaker against real etcd processes on TCP loopback.

First the contract every backend passes (the tests of
``tests/unit/test_matchmaker.py``, run here on etcd), then what only etcd
does: leases (one keep-alive refreshes every route; a killed server's
routes go with its lease), the watch (changes pushed within a round trip),
user and password, and a three-member cluster losing the member a client
talks to while calls go on.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

import zmqactors as za
from tests.discovery_checks import (
    check_calls_between_processes,
    check_start_and_stop_seen_at_once,
)
from tests.etcd_process import cluster_url
from tests.helpers import load_module, wait_until
from zmqactors.errors import ConfigurationError
from zmqactors.matchmaker import EtcdAccess, Route, create_matchmaker, matchmaker_for
from zmqactors.matchmaker.etcd import EtcdMatchmaker
from zmqactors.matchmaker.gateway import EtcdError, EtcdUnavailable, b64
from zmqactors.options import parse_url
from zmqactors.topics import matchmaker_key

if TYPE_CHECKING:
    from collections.abc import Callable

    from tests.etcd_process import EtcdProcess
    from zmqactors.matchmaker import Matchmaker

pytestmark = pytest.mark.integration

KEY = "default/compute"
LONG_TTL = 60.0
TOPIC = "calc.etcd"
SERVER_TTL = 2.0  # matchmaker_ttl of the server processes: refreshed every 0.67 s
CALL_TIMEOUT = 5.0
UNIT = Path(__file__).resolve().parents[1] / "unit" / "test_matchmaker.py"


# The contract every backend passes, run on etcd with the fixtures below.
_contract = load_module("zmqactors_matchmaker_contract", UNIT)
test_lookup_of_unknown_key_is_empty = _contract.test_lookup_of_unknown_key_is_empty
test_register_lookup_unregister = _contract.test_register_lookup_unregister
test_unregister_of_absent_route_is_not_an_error = (
    _contract.test_unregister_of_absent_route_is_not_an_error
)
test_results_are_sorted_by_server_then_address = (
    _contract.test_results_are_sorted_by_server_then_address
)
test_reregister_refreshes_the_expiry_without_duplicating = (
    _contract.test_reregister_refreshes_the_expiry_without_duplicating
)
test_several_servers_and_addresses_per_key = _contract.test_several_servers_and_addresses_per_key
test_keys_are_isolated = _contract.test_keys_are_isolated
test_names_with_every_allowed_character_and_maximal_length = (
    _contract.test_names_with_every_allowed_character_and_maximal_length
)
test_instances_on_one_store_see_each_other = _contract.test_instances_on_one_store_see_each_other
test_expired_routes_are_skipped = _contract.test_expired_routes_are_skipped
test_expired_route_comes_back_when_registered_again = (
    _contract.test_expired_route_comes_back_when_registered_again
)
test_register_refuses_a_bad_ttl = _contract.test_register_refuses_a_bad_ttl
test_close_is_idempotent = _contract.test_close_is_idempotent
test_concurrent_threads_lose_no_route = _contract.test_concurrent_threads_lose_no_route


def addresses(routes: tuple[Route, ...]) -> list[tuple[str, str]]:
    return [(route.server, route.address) for route in routes]


@pytest.fixture
def make_matchmaker(
    etcd_server: EtcdProcess, request: pytest.FixtureRequest
) -> Callable[[], Matchmaker]:
    """Build etcd matchmakers that share one fresh prefix of this test's etcd."""
    location = f"{etcd_server.host_port}/t-{uuid.uuid4().hex}"

    def make() -> Matchmaker:
        backend = create_matchmaker("etcd", location)
        request.addfinalizer(backend.close)
        return backend

    return make


@pytest.fixture
def mm(make_matchmaker: Callable[[], Matchmaker]) -> Matchmaker:
    return make_matchmaker()


@pytest.fixture
def matchmaker_url(etcd_server: EtcdProcess, on_loopback: Callable[[str], str]) -> str:
    """Servers started by ``spawn_server`` register in this test's etcd, with a short TTL."""
    return on_loopback(f"{etcd_server.url}?matchmaker_ttl={SERVER_TTL}")


def server_routes(backend: Matchmaker, server: str) -> list[Route]:
    return [r for r in backend.lookup(matchmaker_key(za.Target(TOPIC))) if r.server == server]


def gateway_post(member: EtcdProcess, path: str, body: dict[str, object]) -> dict[str, object]:
    request = urllib.request.Request(
        f"http://{member.host_port}/v3/{path}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=5.0) as reply:  # noqa: S310
        answer: dict[str, object] = json.loads(reply.read())
        return answer


def count_requests(mm: EtcdMatchmaker) -> list[str]:
    """The paths of the requests ``mm`` makes from now on, as it makes them."""
    requests: list[str] = []
    real_call = mm._gateway.call

    def counting(path: str, body: dict[str, object]) -> dict[str, object]:
        requests.append(path)
        return real_call(path, body)

    mm._gateway.call = counting  # type: ignore[method-assign]
    return requests


# --- the backend: leases, watch, URL ------------------------------------------------


def test_one_keep_alive_refreshes_a_thousand_routes(mm: Matchmaker) -> None:
    assert isinstance(mm, EtcdMatchmaker)
    routes = [(KEY, f"node-{i}", f"tcp://127.0.0.1:{i + 1}", None) for i in range(1000)]
    mm.refresh(routes, LONG_TTL)
    assert len(mm.lookup(KEY)) == 1000
    requests = count_requests(mm)
    mm.refresh(routes, LONG_TTL)
    assert requests == ["lease/keepalive"]
    assert len(mm.lookup(KEY)) == 1000


def test_a_thousand_routes_go_in_one_request(make_matchmaker: Callable[[], Matchmaker]) -> None:
    mm, other, reader = make_matchmaker(), make_matchmaker(), make_matchmaker()
    assert isinstance(mm, EtcdMatchmaker)
    routes = [(KEY, f"node-{i}", f"tcp://127.0.0.1:{i + 1}", None) for i in range(1000)]
    mm.refresh(routes, LONG_TTL)
    mm.register(KEY, "short", "tcp://127.0.0.1:9", 5.0)  # on a lease of its own
    other.register(KEY, "other", "tcp://127.0.0.1:1", LONG_TTL)
    requests = count_requests(mm)
    mm.unregister_many(routes)
    assert requests == ["kv/lease/revoke"]
    assert addresses(reader.lookup(KEY)) == [
        ("other", "tcp://127.0.0.1:1"),
        ("short", "tcp://127.0.0.1:9"),
    ]
    mm.unregister_many([(KEY, "short", "tcp://127.0.0.1:9", None), (KEY, "gone", "x", None)])
    assert addresses(reader.lookup(KEY)) == [("other", "tcp://127.0.0.1:1")]


def test_routes_come_back_on_a_new_lease_when_theirs_was_revoked(
    mm: Matchmaker, etcd_server: EtcdProcess
) -> None:
    assert isinstance(mm, EtcdMatchmaker)
    mm.register(KEY, "node-1", "tcp://127.0.0.1:1", LONG_TTL)
    mm.register(KEY, "node-2", "tcp://127.0.0.1:2", LONG_TTL)
    (lease,) = mm._leases.values()
    # As if the lease had expired during an outage.
    gateway_post(etcd_server, "kv/lease/revoke", {"ID": lease})
    assert mm.lookup(KEY) == ()
    mm.refresh(
        [(KEY, "node-1", "tcp://127.0.0.1:1", None), (KEY, "node-2", "tcp://127.0.0.1:2", None)],
        LONG_TTL,
    )
    assert addresses(mm.lookup(KEY)) == [
        ("node-1", "tcp://127.0.0.1:1"),
        ("node-2", "tcp://127.0.0.1:2"),
    ]


def test_close_revokes_the_lease_so_routes_go_at_once(
    make_matchmaker: Callable[[], Matchmaker],
) -> None:
    server_side, client_side = make_matchmaker(), make_matchmaker()
    server_side.register(KEY, "node-1", "tcp://127.0.0.1:1", LONG_TTL)
    assert len(client_side.lookup(KEY)) == 1
    server_side.close()
    assert client_side.lookup(KEY) == ()


def test_the_watch_reports_changed_keys(make_matchmaker: Callable[[], Matchmaker]) -> None:
    watcher, writer = make_matchmaker(), make_matchmaker()
    assert isinstance(watcher, EtcdMatchmaker)
    seen: list[tuple[str, ...] | None] = []
    changed = threading.Event()

    def notify(keys: tuple[str, ...] | None) -> None:
        seen.append(keys)
        changed.set()

    watcher.watch(notify)
    wait_until(lambda: seen == [None], "the watch starts")
    writer.register("default/a.b", "node-1", "tcp://127.0.0.1:1", LONG_TTL)
    wait_until(lambda: ("default/a.b",) in seen, "the registration pushed")
    writer.unregister("default/a.b", "node-1", "tcp://127.0.0.1:1")
    wait_until(lambda: seen.count(("default/a.b",)) >= 2, "the unregistration pushed")
    watcher.close()
    assert not any(t.name == "zmqactors-etcd-watch" for t in threading.enumerate())


def test_foreign_keys_under_the_prefix_are_skipped(
    mm: Matchmaker, etcd_server: EtcdProcess
) -> None:
    assert isinstance(mm, EtcdMatchmaker)
    mm.register(KEY, "node-1", "tcp://127.0.0.1:1", LONG_TTL)
    foreign = mm._root + b"default%2Fcompute/junk"
    gateway_post(etcd_server, "kv/put", {"key": b64(foreign), "value": b64(b"not json")})
    assert addresses(mm.lookup(KEY)) == [("node-1", "tcp://127.0.0.1:1")]


def test_no_member_answering_fails_fast_naming_them() -> None:
    mm = EtcdMatchmaker([("127.0.0.1", 1), ("127.0.0.1", 2)], "/x", timeout=1.0)
    started = time.monotonic()
    with pytest.raises(EtcdUnavailable, match=r"127\.0\.0\.1:1.*127\.0\.0\.1:2"):
        mm.lookup(KEY)
    assert time.monotonic() - started < 3.0
    mm.close()


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("zmq+etcd://", "missing host"),
        ("zmq+etcd://h:0", "port"),
        ("zmq+etcd://h:1/a//b", "empty parts"),
        ("zmq+etcd://:secret@h:1", "names no user"),
    ],
)
def test_bad_urls_are_refused_naming_the_problem(url: str, problem: str) -> None:
    with pytest.raises(ConfigurationError, match=problem) as info:
        matchmaker_for(parse_url(url))
    assert "secret" not in str(info.value)


def test_tls_options_need_the_etcds_scheme(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    settings = parse_url("zmq+etcd://h:1").evolve(ssl_ca_certs=str(ca))
    with pytest.raises(ConfigurationError, match="ssl_ca_certs needs TLS"):
        matchmaker_for(settings)


def enable_auth(member: EtcdProcess, password: str) -> None:
    """Add user root with ``password`` and turn etcd's authentication on."""
    gateway_post(member, "auth/user/add", {"name": "root", "password": password})
    gateway_post(member, "auth/user/grant", {"user": "root", "role": "root"})
    gateway_post(member, "auth/enable", {})


def test_user_and_password_from_a_file(etcd_server: EtcdProcess, tmp_path: Path) -> None:
    password = "s3cret-" + uuid.uuid4().hex
    enable_auth(etcd_server, password)
    secret = tmp_path / "etcd-password"
    secret.write_text(password + "\n")
    secret.chmod(0o600)
    url = f"zmq+etcd://root@{etcd_server.host_port}/auth"
    good = matchmaker_for(parse_url(url).evolve(etcd_password_file=str(secret)))
    good.register(KEY, "node-1", "tcp://127.0.0.1:1", LONG_TTL)
    assert addresses(good.lookup(KEY)) == [("node-1", "tcp://127.0.0.1:1")]
    anonymous = create_matchmaker("etcd", f"{etcd_server.host_port}/auth")
    with pytest.raises(EtcdError):
        anonymous.lookup(KEY)
    not_it = "not-" + password
    wrong = create_matchmaker(
        "etcd",
        f"{etcd_server.host_port}/auth",
        access=EtcdAccess(username="root", password=not_it),
    )
    with pytest.raises(EtcdError, match="refused user 'root'") as info:
        wrong.lookup(KEY)
    assert not_it not in str(info.value)
    for mm in (good, anonymous, wrong):
        mm.close()


def test_an_invalidated_token_is_renewed(etcd_server: EtcdProcess, monkeypatch) -> None:
    password = "s3cret-" + uuid.uuid4().hex
    enable_auth(etcd_server, password)
    monkeypatch.setenv("ZMQACTORS_ETCD_PASSWORD", password)
    mm = matchmaker_for(parse_url(f"zmq+etcd://root@{etcd_server.host_port}/auth"))
    mm.register(KEY, "node-1", "tcp://127.0.0.1:1", LONG_TTL)
    # Setting a user's password invalidates every token etcd gave that user,
    # as expiry does: mm's next request is refused and it authenticates again.
    token = gateway_post(etcd_server, "auth/authenticate", {"name": "root", "password": password})
    request = urllib.request.Request(
        f"http://{etcd_server.host_port}/v3/auth/user/changepw",
        data=json.dumps({"name": "root", "password": password}).encode(),
        headers={"Content-Type": "application/json", "Authorization": str(token["token"])},
    )
    urllib.request.urlopen(request, timeout=5.0).close()  # noqa: S310
    gateway = mm._gateway  # type: ignore[attr-defined]
    logins: list[str] = []
    real_login = gateway._authenticate
    monkeypatch.setattr(gateway, "_authenticate", lambda: (logins.append("x"), real_login())[1])
    assert addresses(mm.lookup(KEY)) == [("node-1", "tcp://127.0.0.1:1")]
    assert logins == ["x"]
    mm.close()


def test_https_with_a_client_certificate(make_pki, start_etcd) -> None:
    pki = make_pki()
    member = start_etcd(tls=pki)
    url = f"{member.url}?ssl_ca_certs={pki.ca}"
    with_cert = f"{url}&ssl_certfile={pki.client_cert}&ssl_keyfile={pki.client_key}"
    good = matchmaker_for(parse_url(with_cert))
    good.register(KEY, "node-1", "tcp://127.0.0.1:1", LONG_TTL)
    assert addresses(good.lookup(KEY)) == [("node-1", "tcp://127.0.0.1:1")]
    good.close()
    # Without a client certificate etcd refuses the handshake.
    without = matchmaker_for(parse_url(url))
    with pytest.raises(EtcdUnavailable):
        without.lookup(KEY)
    without.close()
    # A server whose certificate another CA signed is not trusted.
    other = make_pki()
    stranger = matchmaker_for(
        parse_url(
            f"{member.url}?ssl_ca_certs={other.ca}"
            f"&ssl_certfile={pki.client_cert}&ssl_keyfile={pki.client_key}"
        )
    )
    with pytest.raises(EtcdUnavailable, match="CERTIFICATE_VERIFY_FAILED"):
        stranger.lookup(KEY)
    stranger.close()


# --- servers in other processes, found through etcd ------------------------------------


def test_calls_between_processes_through_etcd(spawn_server, matchmaker_url) -> None:
    spawn_server(TOPIC, "node-1")
    spawn_server(TOPIC, "node-2")
    check_calls_between_processes(matchmaker_url, TOPIC)


def test_a_started_and_a_stopped_server_are_seen_at_once(spawn_server, matchmaker_url) -> None:
    check_start_and_stop_seen_at_once(spawn_server, matchmaker_url, TOPIC)


def test_a_killed_server_goes_with_its_lease(spawn_server, etcd_server) -> None:
    backend = create_matchmaker("etcd", parse_url(etcd_server.url).matchmaker.location)
    proc = spawn_server(TOPIC, "node-1", url=f"{etcd_server.url}?matchmaker_ttl={SERVER_TTL}")
    assert len(server_routes(backend, "node-1")) == 1
    proc.proc.kill()
    proc.proc.wait(timeout=10)
    killed_at = time.monotonic()
    wait_until(lambda: server_routes(backend, "node-1") == [], "the lease expires", timeout=5.0)
    assert time.monotonic() - killed_at <= SERVER_TTL + 2.0
    backend.close()


def test_calls_go_on_when_the_member_a_client_talks_to_dies(
    spawn_server, etcd_cluster: list[EtcdProcess], on_loopback: Callable[[str], str]
) -> None:
    url = on_loopback(f"{cluster_url(etcd_cluster)}?matchmaker_ttl={SERVER_TTL}")
    spawn_server(TOPIC, "node-1", url=url)
    # The client talks to the first member first; a short cache so it asks etcd.
    with za.Transport.from_url(f"{url}&lookup_cache_ttl=0.2") as transport:
        client = za.RPCClient(transport, za.Target(TOPIC), timeout=CALL_TIMEOUT)
        assert client.call("whoami") == "node-1"
        etcd_cluster[0].kill()
        deadline = time.monotonic() + 3 * SERVER_TTL
        while time.monotonic() < deadline:
            assert client.call("add", a=1, b=2) == 3
        # Past its TTL: the server kept its lease alive through another member.
        survivor = create_matchmaker(
            "etcd", parse_url(cluster_url(etcd_cluster[1:])).matchmaker.location
        )
        assert [r.server for r in survivor.lookup(matchmaker_key(za.Target(TOPIC)))] == ["node-1"]
        survivor.close()
        # The server's registrations live on through the other members; a
        # server started now is found through them, pushed by the watch.
        spawn_server(TOPIC, "node-2", url=url)
        wait_until(
            lambda: {client.call("whoami") for _ in range(4)} == {"node-1", "node-2"},
            "node-2 found through the surviving members",
            timeout=5.0,
        )


def test_calls_continue_across_an_etcd_outage(spawn_server, matchmaker_url, etcd_server) -> None:
    spawn_server(TOPIC, "node-1")
    # A short lookup cache, so the client really asks etcd during the outage.
    with za.Transport.from_url(f"{matchmaker_url}&lookup_cache_ttl=0.2") as transport:
        client = za.RPCClient(transport, za.Target(TOPIC), timeout=CALL_TIMEOUT)
        assert client.call("whoami") == "node-1"
        etcd_server.kill()

        def noticed() -> bool:
            # Each call may start a background refresh, which fails now.
            assert client.call("add", a=1, b=2) == 3
            return transport.stats.snapshot().get("matchmaker_errors", 0) >= 2

        wait_until(noticed, "the client's matchmaker failing", timeout=15)
        # Past the servers' TTL: cached routes keep serving.
        deadline = time.monotonic() + SERVER_TTL + 0.5
        while time.monotonic() < deadline:
            assert client.call("add", a=1, b=2) == 3
        etcd_server.start()
        # node-1 is found again (its lease kept or renewed), and a server
        # started now is pushed to the client.
        spawn_server(TOPIC, "node-2")
        wait_until(
            lambda: {client.call("whoami") for _ in range(4)} == {"node-1", "node-2"},
            "both servers after the outage",
            timeout=10.0,
        )
    backend = create_matchmaker("etcd", parse_url(etcd_server.url).matchmaker.location)
    assert [r.server for r in backend.lookup(matchmaker_key(za.Target(TOPIC)))] == [
        "node-1",
        "node-2",
    ]
    backend.close()
