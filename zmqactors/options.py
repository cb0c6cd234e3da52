"""Every oslo.config option of zmqactors, and the frozen `Settings` read from them.

The options live in group ``[zmq]``; `list_opts` is the ``oslo.config.opts``
entry point (``zmqactors = zmqactors.options:list_opts``). The library never
reads the global ``cfg.CONF``: `Settings.from_conf` reads a given ``ConfigOpts``
once into a frozen `Settings`, and `parse_url` builds one from a transport URL.

Transport URLs choose the matchmaker backend:

=============================================== ==============================
``zmq://``                                      files under `default_file_directory`
``zmq+memory://`` or ``zmq+memory://NAME``      this process only
``zmq+file:///ABSOLUTE/DIR``                    files under that directory
``zmq+redis://[:PASSWORD@]HOST[:PORT][/DB]``    Redis (port 6379, db 0)
``zmq+sentinel://[:PASSWORD@]H1:P1,H2:P2/NAME`` Redis Sentinel (port 26379)
=============================================== ==============================

Query parameters override options, e.g. ``zmq://?timeout=2&executor_size=4``.
Special characters in a password, a name or a path are percent-encoded.
"""

from __future__ import annotations

import copy
import dataclasses
import ipaddress
import math
import os
import re
import tempfile
import urllib.parse
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final, Literal, NamedTuple, get_args

from oslo_config import cfg

from zmqactors import _addresses
from zmqactors.errors import ConfigurationError

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "ALL_OPTS",
    "DEFAULT_URL",
    "GROUP_NAME",
    "OPTION_BOUNDS",
    "Bounds",
    "MatchmakerKind",
    "MatchmakerSpec",
    "Settings",
    "default_file_directory",
    "list_opts",
    "parse_url",
    "register_opts",
]

GROUP_NAME: Final = "zmq"
DEFAULT_URL: Final = "zmq://"

MatchmakerKind = Literal["memory", "file", "redis", "sentinel"]
_MATCHMAKER_KINDS: Final[tuple[str, ...]] = get_args(MatchmakerKind)

_REDIS_PORT: Final = 6379
_SENTINEL_PORT: Final = 26379
_MAX_PORT: Final = 65535


class Bounds(NamedTuple):
    """The type and inclusive limits of a numeric option (``None``: unbounded on that side)."""

    kind: type[int | float]
    minimum: float | None
    maximum: float | None = None

    def describe(self) -> str:
        """Say in words which values are allowed, e.g. ``"between 1 and 1024"``."""
        if self.minimum is not None and self.maximum is not None:
            return f"between {self.minimum} and {self.maximum}"
        if self.minimum is not None:
            return f"at least {self.minimum}"
        if self.maximum is not None:
            return f"at most {self.maximum}"
        return "finite"


# The one table of numeric limits: the oslo.config opts and `Settings`
# validation both read it, so the two can never disagree.
OPTION_BOUNDS: Final[Mapping[str, Bounds]] = MappingProxyType(
    {
        "port_min": Bounds(int, 0, _MAX_PORT),
        "port_max": Bounds(int, 0, _MAX_PORT),
        "timeout": Bounds(float, 0.001),
        "executor_size": Bounds(int, 1, 1024),
        "matchmaker_ttl": Bounds(float, 1.0),
        "lookup_cache_ttl": Bounds(float, 0.0),
        "max_message_size": Bounds(int, 1024, 1 << 30),
        # ZeroMQ stores the high-water mark in a C int: larger values fail in setsockopt.
        "high_water_mark": Bounds(int, 0, 2**31 - 1),
        "linger": Bounds(float, 0.0, 60.0),
        # ZMQ_HANDSHAKE_IVL in ms, an int; 0 (no limit) is not offered.
        "handshake_timeout": Bounds(float, 0.1, 3600.0),
    }
)


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
    the URL as given with any password replaced by ``***``, safe to log.
    ``password`` (redis and sentinel only) is kept out of ``repr()``.

    Raises `ConfigurationError` for an unknown kind, a relative file directory
    or a password given to a backend that takes none.
    """

    kind: MatchmakerKind
    location: str
    url: str
    password: str | None = dataclasses.field(default=None, repr=False)

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
        if self.password is not None and self.kind not in {"redis", "sentinel"}:
            msg = f"the {self.kind} matchmaker takes no password"
            raise ConfigurationError(msg)


def _default_matchmaker() -> MatchmakerSpec:
    return MatchmakerSpec("file", default_file_directory(), DEFAULT_URL)


@dataclasses.dataclass(frozen=True, slots=True)
class Settings:
    """Every option of a transport, read once; frozen and validated at construction.

    The fields are the ``[zmq]`` options of the same names (see their help in
    `ALL_OPTS`), except ``matchmaker``, which is parsed from ``matchmaker_url``.
    An ``int`` given to a float option is stored as a ``float``.

    ``bind_address`` and ``host`` take IPv4 and IPv6 literals (an IPv6 one
    with or without brackets, stored without) and host names; ``bind_address``
    also a wildcard: ``*`` or ``::`` (every interface, both families where the
    system allows) or ``0.0.0.0`` (IPv4 only).

    Raises `ConfigurationError` naming the option and value when a value has
    the wrong type, lies outside `OPTION_BOUNDS`, is not finite, when
    ``bind_address`` or ``host`` is empty, contains white space or is no
    address (unbalanced brackets, a malformed IPv6 literal, a port), when a
    CURVE path is empty or holds a NUL character, or when the port range is
    not both 0 or ``1 <= port_min <= port_max``. Whether the CURVE files
    exist and are sound is checked when they are used (`zmqactors.net.security`).
    """

    bind_address: str = "127.0.0.1"
    host: str | None = None
    port_min: int = 0
    port_max: int = 0
    timeout: float = 60.0
    executor_size: int = 16
    matchmaker_ttl: float = 30.0
    lookup_cache_ttl: float = 5.0
    max_message_size: int = 4 * 1024 * 1024
    high_water_mark: int = 10000
    linger: float = 1.0
    handshake_timeout: float = 10.0
    curve_secret_key_file: str | None = None
    curve_public_keys_dir: str | None = None
    curve_server_keys_dir: str | None = None
    matchmaker: MatchmakerSpec = dataclasses.field(default_factory=_default_matchmaker)

    def __post_init__(self) -> None:
        """Validate every field; see the class docstring for what is refused."""
        object.__setattr__(self, "bind_address", _check_address("bind_address", self.bind_address))
        if self.host is not None:
            object.__setattr__(self, "host", _check_address("host", self.host))
        for name in _PATH_FIELDS:
            _check_path(name, getattr(self, name))
        for name, bounds in OPTION_BOUNDS.items():
            value = getattr(self, name)
            checked = _check_number(name, value, bounds)
            if checked is not value:
                # Frozen: the only way to store the float a float option promises.
                object.__setattr__(self, name, checked)
        if not (self.port_min == self.port_max == 0 or 1 <= self.port_min <= self.port_max):
            msg = (
                f"options {GROUP_NAME}.port_min and {GROUP_NAME}.port_max must both be 0 "
                "(an ephemeral port) or satisfy 1 <= port_min <= port_max, "
                f"got port_min={self.port_min} and port_max={self.port_max}"
            )
            raise ConfigurationError(msg)
        if not isinstance(self.matchmaker, MatchmakerSpec):
            msg = f"matchmaker must be a MatchmakerSpec, got {type(self.matchmaker).__name__}"
            raise ConfigurationError(msg)

    @property
    def advertised_host(self) -> str:
        """The host name or address other processes reach this one at (no brackets).

        ``host`` if set, else ``bind_address`` unless that is a wildcard, in
        which case an address of this machine's host name of a family the
        wildcard accepts (``0.0.0.0``: IPv4; ``*``, ``::``: either), in the
        resolver's order, not loopback if it has another (see
        `zmqactors._addresses.wildcard_host`). A server advertises the
        address its socket bound (a host name in ``bind_address`` as the
        address it resolved to).
        """
        if self.host is not None:
            return self.host
        if self.bind_address in _addresses.WILDCARDS:
            return _addresses.wildcard_host(ipv6=self.bind_address != "0.0.0.0")  # noqa: S104 - compared
        return self.bind_address

    def evolve(self, **changes: Any) -> Settings:
        """Return a copy with ``changes`` applied, validated like construction.

        Raises `ConfigurationError` for a bad value and ``TypeError`` for a
        name that is not a field.
        """
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_conf(cls, conf: cfg.ConfigOpts, group: str = GROUP_NAME) -> Settings:
        """Read the options of ``group`` from ``conf`` once and return them as `Settings`.

        Registers the options first if needed. ``matchmaker_url`` is parsed
        with `parse_url`, so its query parameters override the other options.
        Raises `ConfigurationError` for an option oslo.config cannot read or
        convert, a value out of bounds, or a bad URL.
        """
        register_opts(conf, group)
        section = conf[group]
        values: dict[str, Any] = {}
        for name in (*_SCALAR_FIELDS, "matchmaker_url"):
            try:
                values[name] = getattr(section, name)
            except (cfg.Error, ValueError) as exc:
                msg = f"option {group}.{name} is invalid: {exc}"
                raise ConfigurationError(msg) from exc
        url = values.pop("matchmaker_url")
        return parse_url(url, cls(**values))


# Every field but `matchmaker` is one option of the same name, also accepted
# as a URL query parameter.
_SCALAR_FIELDS: Final[tuple[str, ...]] = tuple(
    field.name for field in dataclasses.fields(Settings) if field.name != "matchmaker"
)
# The defaults are written once, in `Settings`; the opts take them from there.
_DEFAULTS: Final[Mapping[str, Any]] = MappingProxyType(
    {field.name: field.default for field in dataclasses.fields(Settings)}
)


# The CURVE options: paths, checked for shape here and for content when used.
_PATH_FIELDS: Final = ("curve_secret_key_file", "curve_public_keys_dir", "curve_server_keys_dir")


def _check_path(name: str, value: object) -> None:
    if value is None:
        return
    if not isinstance(value, str):
        msg = f"option {GROUP_NAME}.{name} must be a path, got {value!r}"
        raise ConfigurationError(msg)
    if not value or "\x00" in value:
        msg = f"option {GROUP_NAME}.{name} must be a non-empty path without NUL, got {value!r}"
        raise ConfigurationError(msg)


def _check_address(name: str, value: object) -> str:
    if not isinstance(value, str):
        msg = f"option {GROUP_NAME}.{name} must be a string, got {value!r}"
        raise ConfigurationError(msg)
    if not value or any(char.isspace() for char in value):
        msg = (
            f"option {GROUP_NAME}.{name} must be a non-empty address without spaces, got {value!r}"
        )
        raise ConfigurationError(msg)
    try:
        return _addresses.check_host(f"{GROUP_NAME}.{name}", value, wildcard=name == "bind_address")
    except ValueError as exc:
        raise ConfigurationError(str(exc)) from None


def _check_number(name: str, value: object, bounds: Bounds) -> float:
    # bool is an int subclass, but True as a port or a size is always a mistake.
    wrong_type = isinstance(value, bool) or not isinstance(
        value, int if bounds.kind is int else (int, float)
    )
    if wrong_type:
        kind = "an integer" if bounds.kind is int else "a number"
        msg = f"option {GROUP_NAME}.{name} must be {kind}, got {value!r}"
        raise ConfigurationError(msg)
    assert isinstance(value, int | float)  # noqa: S101 - narrowing for mypy, checked above
    number = value if bounds.kind is int or isinstance(value, float) else float(value)
    if not math.isfinite(number):
        msg = f"option {GROUP_NAME}.{name} must be finite, got {number!r}"
        raise ConfigurationError(msg)
    too_small = bounds.minimum is not None and number < bounds.minimum
    too_large = bounds.maximum is not None and number > bounds.maximum
    if too_small or too_large:
        msg = f"option {GROUP_NAME}.{name} must be {bounds.describe()}, got {number!r}"
        raise ConfigurationError(msg)
    return number


def _int_or_none(value: float | None) -> int | None:
    return None if value is None else int(value)


def _numeric_opt(name: str, help_text: str) -> cfg.Opt:
    bounds = OPTION_BOUNDS[name]
    if bounds.kind is int:
        return cfg.IntOpt(
            name,
            default=_DEFAULTS[name],
            min=_int_or_none(bounds.minimum),
            max=_int_or_none(bounds.maximum),
            help=help_text,
        )
    return cfg.FloatOpt(
        name, default=_DEFAULTS[name], min=bounds.minimum, max=bounds.maximum, help=help_text
    )


_GROUP_TITLE: Final = "ZeroMQ messaging (zmqactors)"
_GROUP_HELP: Final = "Options of zmqactors, the actor-based ZeroMQ messaging library."

ALL_OPTS: Final[tuple[cfg.Opt, ...]] = (
    cfg.StrOpt(
        "bind_address",
        default=_DEFAULTS["bind_address"],
        help="Address server sockets bind to: an IPv4 or IPv6 address of this "
        "host (an IPv6 one with or without brackets), a host name or network "
        "interface that resolves to one, or a wildcard for every interface: '*' "
        "or '::' (IPv6 and IPv4 where the system allows), '0.0.0.0' (IPv4 only).",
    ),
    cfg.StrOpt(
        "host",
        default=_DEFAULTS["host"],
        sample_default="<bind_address, or the host name if bind_address is a wildcard>",
        help="Host name or IP address (IPv4 or IPv6) advertised in the matchmaker, "
        "which other processes use to reach this one. Unset: the address "
        "bind_address bound; for a wildcard, the first address of this machine's "
        "host name in the resolver's order, of a family the wildcard accepts "
        "('0.0.0.0': IPv4; '*', '::': either), not loopback if there is another.",
    ),
    _numeric_opt(
        "port_min",
        "Lowest TCP port a server socket may bind to. port_min = port_max = 0 "
        "lets the operating system choose an ephemeral port; otherwise "
        "1 <= port_min <= port_max.",
    ),
    _numeric_opt("port_max", "Highest TCP port a server socket may bind to; see port_min."),
    _numeric_opt("timeout", "Default timeout of an RPC call, in seconds."),
    _numeric_opt("executor_size", "Number of threads per RPC server that run endpoint methods."),
    cfg.StrOpt(
        "matchmaker_url",
        default=DEFAULT_URL,
        # It may carry a Redis password: oslo.config masks secret options in logs.
        secret=True,
        help="Transport URL choosing the matchmaker: zmq:// (files in the user's "
        "runtime directory), zmq+memory://[NAME] (this process only), "
        "zmq+file:///DIR, zmq+redis://[:PASSWORD@]HOST[:PORT][/DB] or "
        "zmq+sentinel://[:PASSWORD@]HOST:PORT[,HOST:PORT...]/MASTER. Query "
        "parameters override the other options of this group, e.g. zmq://?timeout=2.",
    ),
    _numeric_opt(
        "matchmaker_ttl",
        "Seconds a matchmaker registration lives unless refreshed; it is "
        "refreshed every matchmaker_ttl / 3 seconds.",
    ),
    _numeric_opt(
        "lookup_cache_ttl",
        "Seconds a successful matchmaker lookup is cached (0 disables the "
        "cache); empty results are never cached.",
    ),
    _numeric_opt(
        "max_message_size",
        "Largest frame, in bytes, accepted from the network; larger ones are dropped.",
    ),
    _numeric_opt(
        "high_water_mark",
        "ZeroMQ high-water mark (SNDHWM and RCVHWM) of network sockets, in "
        "messages, and how many more messages per server a client holds "
        "before cast() and call() block (until their timeout); 0 means unlimited.",
    ),
    _numeric_opt("linger", "Seconds a closing socket may spend sending the messages still queued."),
    _numeric_opt(
        "handshake_timeout",
        "Seconds a network connection may take to complete its ZeroMQ (and "
        "CURVE) handshake before it is dropped (ZMQ_HANDSHAKE_IVL), so peers "
        "that connect and stay silent do not hold connections open.",
    ),
    cfg.StrOpt(
        "curve_secret_key_file",
        default=_DEFAULTS["curve_secret_key_file"],
        help="CurveZMQ: this host's key pair, a zmq.auth certificate file holding "
        "the public and the secret key (write one with 'zmqactors keygen DIR'); it "
        "must not be readable by group or others. Set, clients encrypt every "
        "network connection and only talk to servers that advertise a CURVE key; "
        "servers also need curve_public_keys_dir. Unset: no encryption.",
    ),
    cfg.StrOpt(
        "curve_public_keys_dir",
        default=_DEFAULTS["curve_public_keys_dir"],
        help="CurveZMQ: the directory of the public keys (*.key certificate files) "
        "of the clients a server lets in; every other client is refused. Read "
        "when a server starts. Servers with curve_secret_key_file set refuse to "
        "start without it.",
    ),
    cfg.StrOpt(
        "curve_server_keys_dir",
        default=_DEFAULTS["curve_server_keys_dir"],
        help="CurveZMQ, clients: the directory of the public keys (NAME.key "
        "certificate files) of the servers a client trusts, like SSH's "
        "known_hosts. Set, a client sends only to routes whose server key is "
        "in it, and to a server NAME only with the key of NAME.key when that "
        "file exists; other routes are never used, logged once and counted "
        "(untrusted_routes). Read when the transport starts. Needs "
        "curve_secret_key_file. Unset: the key a server registers in the "
        "matchmaker is trusted.",
    ),
)


def list_opts() -> list[tuple[str, list[cfg.Opt]]]:
    """Return the library's options for oslo.config's sample generator.

    The ``oslo.config.opts`` entry point; the opts are copies, so callers may
    change them freely.
    """
    return [(GROUP_NAME, list(copy.deepcopy(ALL_OPTS)))]


def register_opts(conf: cfg.ConfigOpts, group: str = GROUP_NAME) -> None:
    """Register every option in ``group`` of ``conf``; registering again is a no-op.

    Raises `ConfigurationError` when ``conf`` already has a different option of
    the same name in that group.
    """
    # A new OptGroup each time: oslo.config keeps a ConfigOpts' overrides in
    # its OptGroup object, so a shared one would leak them between ConfigOpts.
    conf.register_group(cfg.OptGroup(group, title=_GROUP_TITLE, help=_GROUP_HELP))
    try:
        conf.register_opts(ALL_OPTS, group=group)
    except cfg.DuplicateOptError as exc:
        msg = f"cannot register the zmqactors options in group {group!r}: {exc}"
        raise ConfigurationError(msg) from exc


# ---------------------------------------------------------------------------
# Transport URLs


class _URLError(Exception):
    """A problem with a URL, before the URL itself is added to the message."""


_SCHEME: Final = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")
_KNOWN_SCHEMES: Final = ("zmq", "zmq+file", "zmq+memory", "zmq+redis", "zmq+sentinel")
_HOST_PORT: Final = re.compile(
    r"(?:\[(?P<ipv6>[0-9A-Fa-f:.]+)\]|(?P<host>[A-Za-z0-9._-]+))(?::(?P<port>[0-9]{1,5}))?"
)
_DIGITS: Final = re.compile(r"[0-9]+")
_INTEGER: Final = re.compile(r"[+-]?[0-9]+")
# Plain decimal notation only: float() would also take "nan", "inf" and "1_0".
_FLOAT: Final = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def _redact(url: str) -> str:
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


def parse_url(url: str, base: Settings | None = None) -> Settings:
    """Return ``base`` (default: ``Settings()``) with the matchmaker and options of ``url``.

    The URL's scheme and location choose the matchmaker (see the module
    docstring); its query parameters, named like the options, override them.
    Raises `ConfigurationError` naming the URL, with any password redacted,
    and the problem: not a string, a missing or unknown scheme, a bad
    location, an unknown, repeated or malformed parameter, or a value out of
    bounds.
    """
    if not isinstance(url, str):
        # Neither shown nor repr()ed: a bytes URL may carry a password.
        msg = f"invalid transport URL: expected a str, got {type(url).__name__}"
        raise ConfigurationError(msg)
    safe_url = _redact(url)
    settings = Settings() if base is None else base
    try:
        spec, overrides = _parse(url, safe_url)
        return settings.evolve(matchmaker=spec, **overrides)
    except (_URLError, ConfigurationError) as exc:
        msg = f"invalid transport URL {safe_url!r}: {exc}"
        # Not chained: an inner message might quote the unredacted URL.
        raise ConfigurationError(msg) from None


def _parse(url: str, safe_url: str) -> tuple[MatchmakerSpec, dict[str, object]]:
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
    password = _parse_password(scheme, userinfo) if at else None
    spec = _parse_location(scheme, hostinfo, parts.path, safe_url, password)
    return spec, _parse_query(parts.query)


def _parse_password(scheme: str, userinfo: str) -> str:
    if scheme not in {"zmq+redis", "zmq+sentinel"}:
        msg = f"{scheme}:// takes no user name or password"
        raise _URLError(msg)
    user, colon, password = userinfo.partition(":")
    if user or not colon:
        msg = "user names are not supported: give only a password, as ':PASSWORD@'"
        raise _URLError(msg)
    if not password:
        msg = "the password after ':' is empty"
        raise _URLError(msg)
    return urllib.parse.unquote(password)


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
        case "zmq+redis":
            if not hostinfo:
                msg = "missing host: use zmq+redis://HOST[:PORT][/DB]"
                raise _URLError(msg)
            host_port = _parse_host_port(hostinfo, _REDIS_PORT)
            return MatchmakerSpec(
                "redis", f"{host_port}/{_parse_database(path)}", safe_url, password
            )
        case _:
            master = urllib.parse.unquote(path.removeprefix("/"))
            if not master or "/" in master:
                msg = f"expected one master name after the hosts, got path {path!r}"
                raise _URLError(msg)
            hosts = ",".join(_parse_host_port(item, _SENTINEL_PORT) for item in hostinfo.split(","))
            return MatchmakerSpec("sentinel", f"{hosts}/{master}", safe_url, password)


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


def _parse_query(query: str) -> dict[str, object]:
    overrides: dict[str, object] = {}
    if not query:
        return overrides
    for field in query.split("&"):
        raw_name, equals, raw_value = field.partition("=")
        name = urllib.parse.unquote(raw_name)
        if not equals or not name:
            msg = f"query parameter {field!r} is not NAME=VALUE"
            raise _URLError(msg)
        if name not in _SCALAR_FIELDS:
            msg = f"unknown parameter {name!r} (known: {', '.join(sorted(_SCALAR_FIELDS))})"
            raise _URLError(msg)
        if name in overrides:
            msg = f"parameter {name!r} is given more than once"
            raise _URLError(msg)
        overrides[name] = _convert(name, urllib.parse.unquote(raw_value))
    return overrides


def _convert(name: str, value: str) -> object:
    bounds = OPTION_BOUNDS.get(name)
    if bounds is None:
        return value
    if bounds.kind is int:
        if _INTEGER.fullmatch(value) is None:
            msg = f"parameter {name!r} must be an integer, got {value!r}"
            raise _URLError(msg)
        return int(value)
    if _FLOAT.fullmatch(value) is None:
        msg = f"parameter {name!r} must be a number, got {value!r}"
        raise _URLError(msg)
    return float(value)
