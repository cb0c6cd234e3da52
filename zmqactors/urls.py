"""Transport URLs: which matchmaker a URL names, and the options its query sets.

Pure parsing, below `zmqactors.options` (which turns the result into
`Settings`); it reads no configuration and touches no network.

=============================================== ==============================
``zmq://``                                      files under `default_file_directory`
``zmq+memory://`` or ``zmq+memory://NAME``      this process only
``zmq+file:///ABSOLUTE/DIR``                    files under that directory
``zmq+redis://[USER[:PASSWORD]@]HOST[:PORT][/DB]`` Redis (port 6379, db 0)
``zmq+rediss://...``                            the same over TLS
``zmq+sentinel://[USER[:PASSWORD]@]H1:P1,H2:P2/NAME`` Redis Sentinel (port 26379)
``zmq+sentinels://...``                         the same, sentinels and master over TLS
``zmq+etcd://[USER[:PASSWORD]@]H1:P1[,H2:P2...][/PREFIX]`` etcd (port 2379,
                                                prefix ``/zmqactors``)
``zmq+etcds://...``                             the same over HTTPS
=============================================== ==============================

``USER`` and ``PASSWORD`` are the Redis master's (an ACL user; ``:PASSWORD``
alone is the ``default`` user's), or the etcd user's. A password may also come from an option
(``redis_password_file``, ``etcd_password_file``) or the environment: see
`zmqactors.options`.

Query parameters override options, e.g. ``zmq://?timeout=2&executor_size=4``.
Special characters in a password, a name or a path are percent-encoded.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
import tempfile
import urllib.parse
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Final, Literal, get_args

from zmqactors import _addresses
from zmqactors.errors import ConfigurationError

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "MatchmakerKind",
    "MatchmakerSpec",
    "default_file_directory",
    "redact",
    "split_url",
]

MatchmakerKind = Literal["memory", "file", "redis", "sentinel", "etcd"]
_MATCHMAKER_KINDS: Final[tuple[str, ...]] = get_args(MatchmakerKind)

_REDIS_PORT: Final = 6379
_SENTINEL_PORT: Final = 26379
_ETCD_PORT: Final = 2379
_ETCD_PREFIX: Final = "/zmqactors"
_MAX_PORT: Final = 65535


def default_file_directory() -> str:
    """Return the file matchmaker's directory for ``zmq://``.

    ``$XDG_RUNTIME_DIR/zmqactors`` when ``XDG_RUNTIME_DIR`` is an absolute path,
    else ``<temporary directory>/zmqactors-<uid>``. Nothing is created here.
    """
    runtime_dir = os.environ.get("XDG_RUNTIME_DIR", "")
    # The XDG base directory spec says a relative value must be ignored.
    if Path(runtime_dir).is_absolute():
        return str(Path(runtime_dir) / "zmqactors")
    return str(Path(tempfile.gettempdir()) / f"zmqactors-{os.getuid()}")


@dataclasses.dataclass(frozen=True, slots=True)
class MatchmakerSpec:
    """Which matchmaker backend to use and where it is; frozen and validated.

    ``location`` depends on ``kind``: for ``memory`` a name (``""`` is the
    default one), for ``file`` an absolute directory, for ``redis``
    ``"host:port/db"``, for ``sentinel`` ``"h1:p1,h2:p2/master"``. ``url`` is
    the URL as given with any password replaced by ``***``, safe to log; for
    ``etcd`` ``"h1:p1,h2:p2/prefix"`` (the prefix without its leading ``/``).
    ``password`` (redis, sentinel and etcd only) is kept out of ``repr()``;
    ``username`` is the ACL user (``None``: the ``default`` user) and ``tls``
    whether to speak TLS (``zmq+rediss``, ``zmq+sentinels``).

    Raises `ConfigurationError` for an unknown kind, a relative file directory
    or a password, user name or TLS given to a backend that takes none.
    """

    kind: MatchmakerKind
    location: str
    url: str
    password: str | None = dataclasses.field(default=None, repr=False)
    username: str | None = None
    tls: bool = False

    def __post_init__(self) -> None:
        """Validate the fields; see the class docstring for what is refused."""
        if self.kind not in _MATCHMAKER_KINDS:
            msg = f"unknown matchmaker kind {self.kind!r} (known: {', '.join(_MATCHMAKER_KINDS)})"
            raise ConfigurationError(msg)
        if not isinstance(self.location, str) or not isinstance(self.url, str):
            msg = "matchmaker location and url must be strings"
            raise ConfigurationError(msg)
        if self.kind == "file" and not Path(self.location).is_absolute():
            msg = f"the file matchmaker needs an absolute directory, got {self.location!r}"
            raise ConfigurationError(msg)
        if self.kind not in {"redis", "sentinel", "etcd"}:
            for name in ("password", "username"):
                if getattr(self, name) is not None:
                    msg = f"the {self.kind} matchmaker takes no {name}"
                    raise ConfigurationError(msg)
            if self.tls:
                msg = f"the {self.kind} matchmaker takes no TLS"
                raise ConfigurationError(msg)


class _URLError(ConfigurationError):
    """A problem with a URL, before the URL itself is added to the message."""


_SCHEME: Final = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")
_KNOWN_SCHEMES: Final = (
    "zmq",
    "zmq+file",
    "zmq+memory",
    "zmq+redis",
    "zmq+rediss",
    "zmq+sentinel",
    "zmq+sentinels",
    "zmq+etcd",
    "zmq+etcds",
)
# The schemes whose URL may carry a user name and password.
_USER_SCHEMES: Final = frozenset(_KNOWN_SCHEMES[3:])
_TLS_SCHEMES: Final = frozenset({"zmq+rediss", "zmq+sentinels", "zmq+etcds"})
_HOST_PORT: Final = re.compile(
    r"(?:\[(?P<ipv6>[0-9A-Fa-f:.]+)\]|(?P<host>[A-Za-z0-9._-]+))(?::(?P<port>[0-9]{1,5}))?"
)
_DIGITS: Final = re.compile(r"[0-9]+")
# A switch's spellings in a query parameter.
_SWITCH_WORDS: Final[Mapping[str, bool]] = MappingProxyType(
    {"true": True, "yes": True, "on": True, "1": True}
    | {"false": False, "no": False, "off": False, "0": False}
)
_INTEGER: Final = re.compile(r"[+-]?[0-9]+")
# Plain decimal notation only: float() would also take "nan", "inf" and "1_0".
_FLOAT: Final = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def redact(url: str) -> str:
    """Return ``url`` with the password of its user information replaced by ``***``."""
    # Done by hand rather than with urlsplit, which rejects some malformed
    # URLs, and a malformed URL still has to be redacted for its error message.
    match = _SCHEME.match(url)
    if match is None:
        return url
    start = match.end()
    end = min((i for i in (url.find(c, start) for c in "/?#") if i >= 0), default=len(url))
    userinfo, at, hostinfo = url[start:end].rpartition("@")
    if not at:
        return url
    user, colon, _ = userinfo.partition(":")
    # Without a colon the "user name" is most likely a misplaced password.
    hidden = f"{user}:***" if colon else "***"
    return f"{url[:start]}{hidden}@{hostinfo}{url[end:]}"


def split_url(url: str, parameters: Mapping[str, type]) -> tuple[MatchmakerSpec, dict[str, object]]:
    """Return the matchmaker ``url`` names and the options its query parameters set.

    ``parameters`` maps each accepted query parameter to its type (``int``,
    ``float`` or ``str``); a value is converted to it, never evaluated. Raises
    `ConfigurationError` naming the problem (not the URL, which the caller
    adds, redacted with `redact`): a missing or unknown scheme, a bad
    location, an unknown, repeated or malformed parameter.
    """
    return _parse(url, redact(url), parameters)


def _parse(
    url: str, safe_url: str, parameters: Mapping[str, type]
) -> tuple[MatchmakerSpec, dict[str, object]]:
    if not all(" " < char < "\x7f" for char in url):
        # urlsplit would silently drop tabs and newlines, and NFKC-normalise
        # other characters; refuse rather than connect somewhere unintended.
        msg = "only printable ASCII without spaces is allowed (percent-encode the rest)"
        raise _URLError(msg)
    match = _SCHEME.match(url)
    if match is None:
        msg = "missing scheme: a transport URL starts with 'zmq://' or 'zmq+BACKEND://'"
        raise _URLError(msg)
    scheme = match.group(1).lower()
    if scheme not in _KNOWN_SCHEMES:
        msg = f"unknown scheme {scheme!r} (known: {', '.join(_KNOWN_SCHEMES)})"
        raise _URLError(msg)
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        # Its message may quote the host part, password included.
        msg = "malformed host part (check the '[' and ']' around an IPv6 address)"
        raise _URLError(msg) from None
    if parts.fragment:
        msg = "a fragment ('#...') is not allowed"
        raise _URLError(msg)
    userinfo, at, hostinfo = parts.netloc.rpartition("@")
    username, password = _parse_userinfo(scheme, userinfo) if at else (None, None)
    spec = _parse_location(scheme, hostinfo, parts.path, safe_url, password)
    if username is not None or scheme in _TLS_SCHEMES:
        spec = dataclasses.replace(spec, username=username, tls=scheme in _TLS_SCHEMES)
    return spec, _parse_query(parts.query, parameters)


def _parse_userinfo(scheme: str, userinfo: str) -> tuple[str | None, str | None]:
    """``USER``, ``USER:PASSWORD`` or ``:PASSWORD`` as (user name, password), decoded."""
    if scheme not in _USER_SCHEMES:
        msg = f"{scheme}:// takes no user name or password"
        raise _URLError(msg)
    user, colon, password = userinfo.partition(":")
    if colon and not password:
        msg = "the password after ':' is empty"
        raise _URLError(msg)
    if not colon and not user:
        msg = "the user name before '@' is empty"
        raise _URLError(msg)
    username = urllib.parse.unquote(user) if user else None
    if username is not None and not username.isprintable():
        msg = "the user name holds control characters"
        raise _URLError(msg)
    return username, urllib.parse.unquote(password) if colon else None


def _parse_location(
    scheme: str, hostinfo: str, path: str, safe_url: str, password: str | None
) -> MatchmakerSpec:
    match scheme:
        case "zmq":
            if hostinfo or path:
                msg = (
                    f"zmq:// takes no host or path, got {hostinfo + path!r} "
                    "(for a directory use zmq+file:///DIR)"
                )
                raise _URLError(msg)
            return MatchmakerSpec("file", default_file_directory(), safe_url)
        case "zmq+memory":
            if path:
                msg = f"zmq+memory://NAME takes no path, got {path!r}"
                raise _URLError(msg)
            return MatchmakerSpec("memory", urllib.parse.unquote(hostinfo), safe_url)
        case "zmq+file":
            return MatchmakerSpec("file", _parse_directory(hostinfo, path), safe_url)
        case "zmq+redis" | "zmq+rediss":
            if not hostinfo:
                msg = "missing host: use zmq+redis://HOST[:PORT][/DB]"
                raise _URLError(msg)
            host_port = _parse_host_port(hostinfo, _REDIS_PORT)
            return MatchmakerSpec(
                "redis", f"{host_port}/{_parse_database(path)}", safe_url, password
            )
        case "zmq+etcd" | "zmq+etcds":
            return MatchmakerSpec("etcd", _parse_etcd(hostinfo, path), safe_url, password)
        case _:
            master = urllib.parse.unquote(path.removeprefix("/"))
            if not master or "/" in master:
                msg = f"expected one master name after the hosts, got path {path!r}"
                raise _URLError(msg)
            hosts = ",".join(_parse_host_port(item, _SENTINEL_PORT) for item in hostinfo.split(","))
            return MatchmakerSpec("sentinel", f"{hosts}/{master}", safe_url, password)


def _parse_etcd(hostinfo: str, path: str) -> str:
    """``h1:p1,h2:p2/prefix`` from the URL's hosts and path (default prefix: zmqactors)."""
    if not hostinfo:
        msg = "missing host: use zmq+etcd://HOST[:PORT][,HOST[:PORT]...][/PREFIX]"
        raise _URLError(msg)
    hosts = ",".join(_parse_host_port(item, _ETCD_PORT) for item in hostinfo.split(","))
    prefix = urllib.parse.unquote(path).rstrip("/") or _ETCD_PREFIX
    if not prefix.isprintable() or "//" in prefix:
        msg = f"the etcd prefix must be printable, without empty parts, got {path!r}"
        raise _URLError(msg)
    return f"{hosts}{prefix}"


def _parse_directory(hostinfo: str, path: str) -> str:
    if hostinfo:
        msg = f"zmq+file:// takes no host, got {hostinfo!r}: use zmq+file:///ABSOLUTE/DIR"
        raise _URLError(msg)
    directory = urllib.parse.unquote(path)
    if not directory:
        msg = "missing directory: use zmq+file:///ABSOLUTE/DIR"
        raise _URLError(msg)
    if "\x00" in directory:
        msg = "the directory contains a NUL character"
        raise _URLError(msg)
    return directory


def _parse_host_port(text: str, default_port: int) -> str:
    """Return ``text`` as ``host:port`` (``[ipv6]:port``), with the default port filled in."""
    match = _HOST_PORT.fullmatch(text)
    if match is None:
        msg = f"expected HOST or HOST:PORT, got {text!r}"
        if text.count(":") > 1 or "[" in text or "]" in text:
            msg += " (an IPv6 address goes in brackets: [::1]:6379)"
        raise _URLError(msg)
    port = default_port if match["port"] is None else int(match["port"])
    if not 1 <= port <= _MAX_PORT:
        msg = f"port must be between 1 and {_MAX_PORT}, got {port}"
        raise _URLError(msg)
    if match["ipv6"] is None:
        return _addresses.host_port(match["host"], port)
    try:
        ipaddress.IPv6Address(match["ipv6"])
    except ValueError:
        msg = f"not an IPv6 address in brackets: {text!r}"
        raise _URLError(msg) from None
    return _addresses.host_port(match["ipv6"], port)


def _parse_database(path: str) -> int:
    database = path.removeprefix("/")
    if not database:
        return 0
    if _DIGITS.fullmatch(database) is None:
        msg = f"the Redis database must be a non-negative integer, got {database!r}"
        raise _URLError(msg)
    return int(database)


def _parse_query(query: str, parameters: Mapping[str, type]) -> dict[str, object]:
    overrides: dict[str, object] = {}
    if not query:
        return overrides
    for field in query.split("&"):
        raw_name, equals, raw_value = field.partition("=")
        name = urllib.parse.unquote(raw_name)
        if not equals or not name:
            msg = f"query parameter {field!r} is not NAME=VALUE"
            raise _URLError(msg)
        if name not in parameters:
            msg = f"unknown parameter {name!r} (known: {', '.join(sorted(parameters))})"
            raise _URLError(msg)
        if name in overrides:
            msg = f"parameter {name!r} is given more than once"
            raise _URLError(msg)
        overrides[name] = _convert(name, urllib.parse.unquote(raw_value), parameters[name])
    return overrides


def _convert(name: str, value: str, kind: type) -> object:
    if kind is bool:
        switch = _SWITCH_WORDS.get(value.lower())
        if switch is None:
            msg = f"parameter {name!r} must be true or false, got {value!r}"
            raise _URLError(msg)
        return switch
    if kind is int:
        if _INTEGER.fullmatch(value) is None:
            msg = f"parameter {name!r} must be an integer, got {value!r}"
            raise _URLError(msg)
        return int(value)
    if kind is not float:
        return value
    if _FLOAT.fullmatch(value) is None:
        msg = f"parameter {name!r} must be a number, got {value!r}"
        raise _URLError(msg)
    return float(value)
