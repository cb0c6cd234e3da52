"""How to reach and authenticate to Redis, its sentinels and etcd: TLS, users, passwords.

`redis_access` and `etcd_access` read it from `Settings` once, when a
transport builds its matchmaker: passwords from the URL, a password file
(`redis_password_file`, `sentinel_password_file`, `etcd_password_file`) or
the environment (`REDIS_PASSWORD_ENV`, `SENTINEL_PASSWORD_ENV`,
`ETCD_PASSWORD_ENV`), so that none has to be on a command line. Nothing
here imports redis-py.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zmqactors._paths import check_private_path, read_secret_file
from zmqactors.errors import ConfigurationError
from zmqactors.matchmaker.gateway import TLSConfig
from zmqactors.options import (
    ETCD_PASSWORD_ENV,
    GROUP_NAME,
    REDIS_PASSWORD_ENV,
    SENTINEL_PASSWORD_ENV,
)

if TYPE_CHECKING:
    from zmqactors.options import Settings

__all__ = ["EtcdAccess", "RedisAccess", "etcd_access", "redis_access"]

_TLS_FILES = ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile")


@dataclasses.dataclass(frozen=True, slots=True)
class _Access:
    """A network store's user, password (kept out of ``repr()``) and TLS files."""

    username: str | None = None
    password: str | None = dataclasses.field(default=None, repr=False)
    tls: bool = False
    ssl_ca_certs: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class RedisAccess(_Access):
    """Credentials and TLS of a Redis matchmaker; frozen, passwords kept out of ``repr()``.

    ``username``/``password`` are the Redis server's (the master's, with
    Sentinel); ``sentinel_username``/``sentinel_password`` the sentinels'
    own. With ``tls`` every connection (sentinels included) speaks TLS and
    verifies the server's certificate and host name against ``ssl_ca_certs``
    (unset: the system's authorities).
    """

    sentinel_username: str | None = None
    sentinel_password: str | None = dataclasses.field(default=None, repr=False)

    @property
    def scheme(self) -> str:
        """``rediss`` or ``redis``, with the user name: how logs name the link."""
        user = f"{self.username}@" if self.username else ""
        return f"{'rediss' if self.tls else 'redis'}://{user}"

    def client_options(self) -> dict[str, Any]:
        """redis-py keyword arguments for the Redis server (the master)."""
        return {"username": self.username, "password": self.password, **self._tls_options()}

    def sentinel_options(self) -> dict[str, Any]:
        """redis-py keyword arguments for the sentinels."""
        return {
            "username": self.sentinel_username,
            "password": self.sentinel_password,
            **self._tls_options(),
        }

    def _tls_options(self) -> dict[str, Any]:
        if not self.tls:
            return {}
        # Verification on, host name included, whatever redis-py's defaults:
        # without it an on-path attacker could answer with any certificate.
        return {
            "ssl": True,
            "ssl_cert_reqs": "required",
            "ssl_check_hostname": True,
            "ssl_ca_certs": self.ssl_ca_certs,
            "ssl_certfile": self.ssl_certfile,
            "ssl_keyfile": self.ssl_keyfile,
        }


@dataclasses.dataclass(frozen=True, slots=True)
class EtcdAccess(_Access):
    """Credentials and TLS of an etcd matchmaker; frozen, the password kept out of ``repr()``.

    With ``tls`` the members are spoken to over HTTPS, their certificate and
    host name verified against ``ssl_ca_certs`` (unset: the system's
    authorities); ``ssl_certfile``/``ssl_keyfile`` are this client's.
    """

    @property
    def scheme(self) -> str:
        """``etcds`` or ``etcd``, with the user name: how logs name the link."""
        user = f"{self.username}@" if self.username else ""
        return f"{'etcds' if self.tls else 'etcd'}://{user}"

    def tls_config(self) -> TLSConfig | None:
        """The verifying TLS context of these files, or None without TLS.

        Raises `ConfigurationError` naming the files when they cannot be loaded.
        """
        if not self.tls:
            return None
        try:
            return TLSConfig(self.ssl_ca_certs, self.ssl_certfile, self.ssl_keyfile)
        except (OSError, ValueError) as exc:
            msg = (
                f"options {GROUP_NAME}.ssl_ca_certs/ssl_certfile/ssl_keyfile: "
                f"cannot load the etcd TLS files: {exc}"
            )
            raise ConfigurationError(msg) from None


def etcd_access(settings: Settings) -> EtcdAccess:
    """Read the etcd matchmaker's user, password and TLS files named by ``settings``; any thread.

    The password is the URL's, else `etcd_password_file`'s, else
    ``$ZMQACTORS_ETCD_PASSWORD``'s. Raises `ConfigurationError` naming the
    option for a TLS file that is missing or given without ``zmq+etcds://``,
    a password given twice or without a user name; `SecurityError` or
    `ConfigurationError` from `read_secret_file` for an unsafe password file.
    """
    spec = settings.matchmaker
    _check_consistent(settings)
    password = _password(
        spec.password, settings.etcd_password_file, "etcd_password_file", ETCD_PASSWORD_ENV
    )
    if password is not None and spec.username is None:
        msg = (
            f"an etcd password is set (URL, {GROUP_NAME}.etcd_password_file or "
            f"${ETCD_PASSWORD_ENV}) but {spec.url} names no user: use zmq+etcd://USER@HOST"
        )
        raise ConfigurationError(msg)
    return EtcdAccess(username=spec.username, password=password, **_tls(settings))


def _password(in_url: str | None, path: str | None, option: str, env: str) -> str | None:
    """The URL's password, else the file's (never both), else the environment's."""
    if path is None:
        return in_url if in_url is not None else os.environ.get(env) or None
    if in_url is not None:
        msg = (
            f"option {GROUP_NAME}.{option} is set and the URL holds a "
            "password too: give the password once"
        )
        raise ConfigurationError(msg)
    return read_secret_file(path, f"option {GROUP_NAME}.{option}")


def redis_access(settings: Settings) -> RedisAccess:
    """Read the Redis matchmaker's credentials and TLS files named by ``settings``; any thread.

    The password is the URL's, else `redis_password_file`'s, else
    ``$ZMQACTORS_REDIS_PASSWORD``'s (giving both a URL password and a file is
    refused); the sentinels' is `sentinel_password_file`'s, else
    ``$ZMQACTORS_SENTINEL_PASSWORD``'s. Raises `ConfigurationError` naming
    the option when a TLS file is missing, a TLS option is given without a
    TLS scheme (rather than talk plain text), or a password twice;
    `SecurityError` or `ConfigurationError` from `read_secret_file` for an
    unsafe or unreadable password file.
    """
    spec = settings.matchmaker
    _check_consistent(settings)
    password = _password(
        spec.password, settings.redis_password_file, "redis_password_file", REDIS_PASSWORD_ENV
    )
    sentinel_password = None
    if spec.kind == "sentinel":
        if settings.sentinel_password_file is not None:
            sentinel_password = read_secret_file(
                settings.sentinel_password_file, "Sentinel password file"
            )
        else:
            sentinel_password = os.environ.get(SENTINEL_PASSWORD_ENV) or None
    return RedisAccess(
        username=spec.username,
        password=password,
        **_tls(settings),
        sentinel_username=settings.sentinel_username,
        sentinel_password=sentinel_password,
    )


def _tls(settings: Settings) -> dict[str, Any]:
    """The TLS fields of `RedisAccess` and `EtcdAccess`, from ``settings``."""
    return {
        "tls": settings.matchmaker.tls,
        **{name: getattr(settings, name) for name in _TLS_FILES},
    }


def _check_consistent(settings: Settings) -> None:
    spec = settings.matchmaker
    for name in _TLS_FILES:
        path = getattr(settings, name)
        if path is None:
            continue
        if not spec.tls:
            msg = (
                f"option {GROUP_NAME}.{name} needs TLS, but {spec.url} is not "
                "zmq+rediss://, zmq+sentinels:// or zmq+etcds://"
            )
            raise ConfigurationError(msg)
        if not Path(path).is_file():
            msg = f"option {GROUP_NAME}.{name}: '{path}' is not a readable file"
            raise ConfigurationError(msg)
    if settings.ssl_keyfile is not None:
        if settings.ssl_certfile is None:
            msg = f"option {GROUP_NAME}.ssl_keyfile needs {GROUP_NAME}.ssl_certfile"
            raise ConfigurationError(msg)
        # The client's private key: this user's alone, like a password file.
        check_private_path(settings.ssl_keyfile, f"option {GROUP_NAME}.ssl_keyfile")
