"""Credentials and TLS files of the Redis matchmaker, read from Settings (no Redis needed).

Passwords come from the URL, a checked file or the environment, so none has
to be on a command line; a password file anyone else could read or swap is
refused, naming the file and never showing the secret.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.helpers import give_away
from zmqactors._paths import read_secret_file
from zmqactors.errors import ConfigurationError, SecurityError
from zmqactors.matchmaker import RedisAccess
from zmqactors.matchmaker.access import redis_access
from zmqactors.options import REDIS_PASSWORD_ENV, SENTINEL_PASSWORD_ENV, parse_url

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.unit

SECRET = "hunter2 and more"  # noqa: S105 - a test password


@pytest.fixture(autouse=True)
def _no_password_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(REDIS_PASSWORD_ENV, raising=False)
    monkeypatch.delenv(SENTINEL_PASSWORD_ENV, raising=False)


def secret_file(directory: Path, content: str = SECRET + "\n", mode: int = 0o600) -> Path:
    path = directory / "password"
    path.write_text(content)
    path.chmod(mode)
    return path


def test_password_file_is_read_without_its_newline(tmp_path: Path) -> None:
    assert read_secret_file(str(secret_file(tmp_path)), "Redis password file") == SECRET
    assert read_secret_file(str(secret_file(tmp_path, SECRET)), "x") == SECRET
    assert read_secret_file(str(secret_file(tmp_path, SECRET + "\r\n")), "x") == SECRET


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o620, 0o602, 0o644])
def test_password_file_open_to_group_or_others_is_refused(tmp_path: Path, mode: int) -> None:
    path = secret_file(tmp_path, mode=mode)
    with pytest.raises(SecurityError, match=rf"'{path}'.*group or others.*chmod 600") as info:
        read_secret_file(str(path), "Redis password file")
    assert SECRET not in str(info.value)


def test_password_file_that_is_a_symlink_is_refused(tmp_path: Path) -> None:
    target = secret_file(tmp_path)
    link = tmp_path / "link"
    link.symlink_to(target)
    with pytest.raises(SecurityError, match=rf"'{link}'.*symbolic link"):
        read_secret_file(str(link), "Redis password file")


def test_password_file_of_another_user_is_refused(tmp_path: Path) -> None:
    path = secret_file(tmp_path)
    other = give_away(path)
    if other is None:
        pytest.skip("only root can give a file away")
    with pytest.raises(SecurityError, match=rf"'{path}'.*owned by uid {other}"):
        read_secret_file(str(path), "Redis password file")


@pytest.mark.parametrize(
    ("content", "fragment"),
    [("", "one non-empty line"), ("\n", "one non-empty line"), ("a\nb\n", "one non-empty line")],
)
def test_password_file_must_hold_one_line(tmp_path: Path, content: str, fragment: str) -> None:
    with pytest.raises(ConfigurationError, match=fragment):
        read_secret_file(str(secret_file(tmp_path, content)), "Redis password file")


def test_missing_password_file_names_it(tmp_path: Path) -> None:
    path = tmp_path / "absent"
    with pytest.raises(ConfigurationError, match=rf"Redis password file '{path}'.*No such file"):
        read_secret_file(str(path), "Redis password file")


def test_directory_as_password_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SecurityError, match="not a regular file"):
        read_secret_file(str(tmp_path), "Redis password file")


def test_access_takes_the_password_from_the_url_file_or_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = "zmq+rediss://alice@h/0"
    assert redis_access(parse_url(url)) == RedisAccess(username="alice", tls=True)
    monkeypatch.setenv(REDIS_PASSWORD_ENV, "from-env")
    assert redis_access(parse_url(url)).password == "from-env"  # noqa: S105 - a test value
    path = secret_file(tmp_path)
    assert redis_access(parse_url(f"{url}?redis_password_file={path}")).password == SECRET
    assert redis_access(parse_url("zmq+rediss://alice:pw@h/0")).password == "pw"  # noqa: S105


def test_access_refuses_a_password_given_twice(tmp_path: Path) -> None:
    path = secret_file(tmp_path)
    with pytest.raises(ConfigurationError, match=r"redis_password_file.*once") as info:
        redis_access(parse_url(f"zmq+redis://:pw@h/0?redis_password_file={path}"))
    assert ":pw@" not in str(info.value)


def test_sentinel_credentials_are_their_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = secret_file(tmp_path)
    url = f"zmq+sentinels://app:pw@s1/m?sentinel_username=watch&sentinel_password_file={path}"
    access = redis_access(parse_url(url))
    assert (access.username, access.password) == ("app", "pw")
    assert (access.sentinel_username, access.sentinel_password) == ("watch", SECRET)
    assert access.sentinel_options()["ssl"] is True
    assert SECRET not in repr(access)
    assert "pw" not in repr(access).replace("password", "")
    monkeypatch.setenv(SENTINEL_PASSWORD_ENV, "env-sentinel")
    access = redis_access(parse_url("zmq+sentinel://s1/m"))
    assert access.sentinel_password == "env-sentinel"  # noqa: S105 - a test value


def test_tls_options_without_a_tls_scheme_are_refused(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    with pytest.raises(ConfigurationError, match=r"ssl_ca_certs needs TLS.*zmq\+rediss"):
        redis_access(parse_url(f"zmq+redis://h/0?ssl_ca_certs={ca}"))
    access = redis_access(parse_url(f"zmq+rediss://h/0?ssl_ca_certs={ca}"))
    options = access.client_options()
    assert options["ssl_ca_certs"] == str(ca)
    assert (options["ssl_cert_reqs"], options["ssl_check_hostname"]) == ("required", True)


def test_missing_tls_file_names_the_option(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"zmq\.ssl_ca_certs.*absent\.pem"):
        redis_access(parse_url(f"zmq+rediss://h/0?ssl_ca_certs={tmp_path}/absent.pem"))


def test_key_without_certificate_is_refused(tmp_path: Path) -> None:
    key = secret_file(tmp_path)
    with pytest.raises(ConfigurationError, match=r"ssl_keyfile needs .*ssl_certfile"):
        redis_access(parse_url(f"zmq+rediss://h/0?ssl_keyfile={key}"))


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o620])
def test_tls_client_key_open_to_group_or_others_is_refused(tmp_path: Path, mode: int) -> None:
    (tmp_path / "c").mkdir()
    (tmp_path / "k").mkdir()
    cert, key = secret_file(tmp_path / "c"), secret_file(tmp_path / "k", mode=mode)
    url = f"zmq+rediss://h/0?ssl_certfile={cert}&ssl_keyfile={key}"
    with pytest.raises(SecurityError, match=r"zmq\.ssl_keyfile .*group or others.*chmod 600"):
        redis_access(parse_url(url))


def test_tls_client_key_that_is_a_symlink_is_refused(tmp_path: Path) -> None:
    (tmp_path / "c").mkdir()
    (tmp_path / "k").mkdir()
    cert, key = secret_file(tmp_path / "c"), secret_file(tmp_path / "k")
    link = tmp_path / "link.pem"
    link.symlink_to(key)
    url = f"zmq+rediss://h/0?ssl_certfile={cert}&ssl_keyfile={link}"
    with pytest.raises(SecurityError, match="is a symbolic link"):
        redis_access(parse_url(url))
    assert redis_access(parse_url(url.replace(str(link), str(key)))).ssl_keyfile == str(key)


def test_plain_redis_has_no_tls_options() -> None:
    assert "ssl" not in redis_access(parse_url("zmq+redis://h/0")).client_options()
