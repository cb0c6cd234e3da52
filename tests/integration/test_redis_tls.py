"""The Redis matchmaker over TLS with an ACL user, against a real TLS-only redis-server.

Issue #12, row 1: on a plain-text link an on-path attacker rewrote lookups.
Here Redis listens with TLS only (``port 0``, ``tls-port``), has one ACL user
and the ``default`` user disabled; certificates are made by the test. The
attacks: a plain-text client, wrong credentials, a server whose certificate
is not from the pinned CA (or names another host) and a plain-text server
where TLS is expected all fail within seconds, naming the matchmaker and
never its password.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING
from urllib.parse import quote

import pytest
import redis

import zmqactors as za
from tests.integration.conftest import MASTER_NAME, start_sentinel
from zmqactors.matchmaker import matchmaker_for
from zmqactors.matchmaker.redis import PREFIX
from zmqactors.options import REDIS_PASSWORD_ENV, SENTINEL_PASSWORD_ENV, parse_url

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from tests.integration.conftest import RedisProcess, TLSFiles

pytestmark = pytest.mark.integration

KEY = "default/tls"
USER = "zmq-app"
PASSWORD = "s3cret pass/word"  # noqa: S105 - a test password
TTL = 30.0
FAST = 5.0  # "within a few seconds": connect and socket timeouts, one retry


class Endpoint:
    def ping(self) -> str:
        return "pong"


@pytest.fixture
def pki(make_pki: Callable[..., TLSFiles]) -> TLSFiles:
    return make_pki()


@pytest.fixture
def tls_redis(start_redis: Callable[..., RedisProcess], pki: TLSFiles) -> RedisProcess:
    return start_redis(tls=pki, acl_user=(USER, PASSWORD))


@pytest.fixture
def password_file(tmp_path: Path) -> Path:
    path = tmp_path / "redis.password"
    path.write_text(PASSWORD + "\n")
    path.chmod(0o600)
    return path


def tls_url(server: RedisProcess, pki: TLSFiles, **params: object) -> str:
    query = "&".join(
        f"{name}={value}" for name, value in {"ssl_ca_certs": pki.ca, **params}.items()
    )
    return f"zmq+rediss://{USER}@{server.host_port}/0?{query}"


# What redis-py raises for a link that does not come up (refused, reset, or silent).
LINK_ERRORS = (redis.ConnectionError, redis.TimeoutError)


def assert_calls_work(url: str) -> None:
    """A server registers through ``url``'s matchmaker and a client's call reaches it."""
    with za.Transport.from_url(url) as transport:
        server = za.RPCServer(transport, za.Target("tls", server="s1"), [Endpoint()])
        server.start()
        try:
            client = za.RPCClient(transport, za.Target("tls"), timeout=5)
            assert client.call("ping") == "pong"
        finally:
            server.stop()
            server.wait(timeout=10)


def fails_fast(url: str, error: type[Exception] | tuple[type[Exception], ...]) -> str:
    """Look a key up through ``url``'s matchmaker; return the error's message."""
    backend = matchmaker_for(parse_url(url))
    started = time.monotonic()
    try:
        with pytest.raises(error) as info:
            backend.lookup(KEY)
    finally:
        backend.close()
    assert time.monotonic() - started < FAST
    message = str(info.value)
    assert PASSWORD not in message
    return message


def test_calls_go_through_a_tls_redis_with_an_acl_user(
    tls_redis: RedisProcess, pki: TLSFiles, password_file: Path
) -> None:
    url = tls_url(tls_redis, pki, redis_password_file=password_file)
    assert PASSWORD not in url
    assert_calls_work(url)
    admin = tls_redis.client()
    try:
        # The route went through the TLS link (and the server left it on stopping).
        assert admin.acl_whoami() == USER
        assert admin.zcard(PREFIX + "default/tls") == 0
    finally:
        admin.close()


def test_password_from_the_environment(
    tls_redis: RedisProcess, pki: TLSFiles, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(REDIS_PASSWORD_ENV, PASSWORD)
    backend = matchmaker_for(parse_url(tls_url(tls_redis, pki)))
    try:
        backend.register(KEY, "node-1", "tcp://127.0.0.1:1", TTL)
        assert [route.server for route in backend.lookup(KEY)] == ["node-1"]
        assert PASSWORD not in repr(backend)
        assert f"rediss://{USER}@" in repr(backend)
    finally:
        backend.close()


def test_password_in_the_url_still_works_and_is_redacted(
    tls_redis: RedisProcess, pki: TLSFiles
) -> None:
    url = tls_url(tls_redis, pki).replace(f"{USER}@", f"{USER}:{quote(PASSWORD, safe='')}@")
    settings = parse_url(url)
    assert PASSWORD not in repr(settings)
    assert settings.matchmaker.url.startswith(f"zmq+rediss://{USER}:***@")
    backend = matchmaker_for(settings)
    try:
        assert backend.lookup(KEY) == ()
    finally:
        backend.close()


def test_a_client_certificate_is_sent_when_required(
    start_redis: Callable[..., RedisProcess], pki: TLSFiles, password_file: Path
) -> None:
    server = start_redis("--tls-auth-clients", "yes", tls=pki, acl_user=(USER, PASSWORD))
    url = tls_url(server, pki, redis_password_file=password_file)
    fails_fast(url, redis.ConnectionError)
    with_cert = f"{url}&ssl_certfile={pki.client_cert}&ssl_keyfile={pki.client_key}"
    backend = matchmaker_for(parse_url(with_cert))
    try:
        assert backend.lookup(KEY) == ()
    finally:
        backend.close()


# --- attacks and mistakes: each fails within seconds, naming the matchmaker -----------


def test_plain_text_client_against_the_tls_port_fails_fast(tls_redis: RedisProcess) -> None:
    url = f"zmq+redis://{USER}:{quote(PASSWORD, safe='')}@{tls_redis.host_port}/0"
    message = fails_fast(url, redis.ConnectionError)
    assert f"RedisMatchmaker(redis://{USER}@{tls_redis.host_port}/0)" in message


def test_plain_text_call_fails_fast_with_a_messaging_error(tls_redis: RedisProcess) -> None:
    url = f"zmq+redis://{USER}@{tls_redis.host_port}/0"
    os.environ.pop(REDIS_PASSWORD_ENV, None)
    with za.Transport.from_url(url) as transport:
        client = za.RPCClient(transport, za.Target("tls"), timeout=30)
        started = time.monotonic()
        with pytest.raises(za.MessagingError, match=rf"RedisMatchmaker\(redis://{USER}@"):
            client.call("ping")
        assert time.monotonic() - started < FAST


@pytest.mark.parametrize("password", ["wrong", None])
def test_bad_credentials_fail_fast(
    tls_redis: RedisProcess, pki: TLSFiles, tmp_path: Path, password: str | None
) -> None:
    url = tls_url(tls_redis, pki)
    if password is not None:
        path = tmp_path / "wrong.password"
        path.write_text(password)
        path.chmod(0o600)
        url += f"&redis_password_file={path}"
    message = fails_fast(url, redis.AuthenticationError)
    assert f"RedisMatchmaker(rediss://{USER}@{tls_redis.host_port}/0)" in message


def test_server_with_a_certificate_from_another_ca_is_refused(
    start_redis: Callable[..., RedisProcess],
    make_pki: Callable[..., TLSFiles],
    pki: TLSFiles,
    password_file: Path,
) -> None:
    # The attacker's Redis accepts anyone, with a certificate of its own CA.
    impostor = start_redis(tls=make_pki())
    url = tls_url(impostor, pki, redis_password_file=password_file)
    message = fails_fast(url, redis.ConnectionError)
    assert "certificate verify failed" in message
    assert "RedisMatchmaker(rediss://" in message


def test_server_with_a_certificate_for_another_host_is_refused(
    start_redis: Callable[..., RedisProcess],
    make_pki: Callable[..., TLSFiles],
    password_file: Path,
) -> None:
    # Signed by the pinned CA, but for another name: a stolen certificate of another server.
    other_host = make_pki(server_names=("other.example",))
    server = start_redis(tls=other_host, acl_user=(USER, PASSWORD))
    url = tls_url(server, other_host, redis_password_file=password_file)
    message = fails_fast(url, redis.ConnectionError)
    assert "certificate verify failed" in message or "match" in message


def test_plain_text_server_where_tls_is_expected_is_refused(
    start_redis: Callable[..., RedisProcess], pki: TLSFiles, password_file: Path
) -> None:
    # An on-path attacker answering in plain text: no TLS, so nothing is sent.
    impostor = start_redis()
    admin = impostor.client()
    try:
        before = admin.info("commandstats")
        url = tls_url(impostor, pki, redis_password_file=password_file)
        assert "RedisMatchmaker(rediss://" in fails_fast(url, LINK_ERRORS)
        after = admin.info("commandstats")
    finally:
        admin.close()
    # The impostor never received the password, nor any command of ours.
    for name in ("cmdstat_auth", "cmdstat_hello", "cmdstat_evalsha", "cmdstat_eval"):
        assert after.get(name) == before.get(name), name


# --- Sentinel: TLS to the sentinels and the master, each with its own user -----------

SENTINEL_USER = "watcher"
SENTINEL_PASSWORD = "sentinel pass"  # noqa: S105 - a test password


@pytest.fixture
def tls_sentinel(tls_redis: RedisProcess, tmp_path: Path) -> Iterator[RedisProcess]:
    sentinel = start_sentinel(
        tmp_path / "sentinel", tls_redis, acl_user=(SENTINEL_USER, SENTINEL_PASSWORD)
    )
    yield sentinel
    sentinel.stop()


def sentinel_url(
    sentinel: RedisProcess, pki: TLSFiles, password_file: Path, **params: object
) -> str:
    query = "&".join(
        f"{name}={value}"
        for name, value in {
            "ssl_ca_certs": pki.ca,
            "redis_password_file": password_file,
            "sentinel_username": SENTINEL_USER,
            **params,
        }.items()
    )
    return f"zmq+sentinels://{USER}@{sentinel.host_port}/{MASTER_NAME}?{query}"


def test_calls_go_through_tls_sentinels_with_their_own_user(
    tls_sentinel: RedisProcess,
    pki: TLSFiles,
    password_file: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(SENTINEL_PASSWORD_ENV, SENTINEL_PASSWORD)
    url = sentinel_url(tls_sentinel, pki, password_file)
    assert_calls_work(url)


def test_wrong_sentinel_password_fails_fast(
    tls_sentinel: RedisProcess, pki: TLSFiles, password_file: Path, tmp_path: Path
) -> None:
    wrong = tmp_path / "sentinel.password"
    wrong.write_text("wrong\n")
    wrong.chmod(0o600)
    url = sentinel_url(tls_sentinel, pki, password_file, sentinel_password_file=wrong)
    message = fails_fast(url, (redis.ConnectionError, redis.AuthenticationError))
    assert "SentinelMatchmaker(sentinels://" in message
    assert SENTINEL_PASSWORD not in message


def test_sentinel_with_a_certificate_from_another_ca_is_refused(
    tls_sentinel: RedisProcess,
    make_pki: Callable[..., TLSFiles],
    password_file: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(SENTINEL_PASSWORD_ENV, SENTINEL_PASSWORD)
    # The client pins another CA: the real sentinel's certificate looks like an impostor's.
    url = sentinel_url(tls_sentinel, make_pki(), password_file)
    message = fails_fast(url, LINK_ERRORS)
    assert "SentinelMatchmaker(sentinels://" in message
