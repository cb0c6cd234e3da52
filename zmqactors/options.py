"""Every oslo.config option of zmqactors, and the frozen `Settings` read from them.

The options live in group ``[zmq]``; `list_opts` is the ``oslo.config.opts``
entry point (``zmqactors = zmqactors.options:list_opts``). The library never
reads the global ``cfg.CONF``: `Settings.from_conf` reads a given ``ConfigOpts``
once into a frozen `Settings`, and `parse_url` builds one from a transport URL
(the URL syntax itself is `zmqactors.urls`).

Longer than 400 lines on purpose: every ``[zmq]`` option lives here (the
design's rule), each with its bounds and the help text operators read in
``oslo-config-generator`` output; the help texts are most of the length.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final, NamedTuple

from oslo_config import cfg

from zmqactors import _addresses, _limits, urls
from zmqactors.errors import ConfigurationError
from zmqactors.urls import MatchmakerKind, MatchmakerSpec, default_file_directory

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "ALL_OPTS",
    "DEFAULT_URL",
    "ETCD_PASSWORD_ENV",
    "GROUP_NAME",
    "OPTION_BOUNDS",
    "REDIS_FILE_OPTIONS",
    "REDIS_PASSWORD_ENV",
    "SENTINEL_PASSWORD_ENV",
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
# The environment variables a Redis or Sentinel password may come from.
REDIS_PASSWORD_ENV: Final = "ZMQACTORS_REDIS_PASSWORD"  # noqa: S105 - a name
SENTINEL_PASSWORD_ENV: Final = "ZMQACTORS_SENTINEL_PASSWORD"  # noqa: S105 - a name
# The environment variable an etcd password may come from.
ETCD_PASSWORD_ENV: Final = "ZMQACTORS_ETCD_PASSWORD"  # noqa: S105 - a name
# The Redis options that name files: the checked password files and TLS files.
REDIS_FILE_OPTIONS: Final = (
    "redis_password_file",
    "ssl_ca_certs",
    "ssl_certfile",
    "ssl_keyfile",
    "sentinel_password_file",
    "etcd_password_file",
)

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
        "max_decoded_items": Bounds(int, 16, 1 << 30),
        "max_decoded_depth": Bounds(int, 2, 10_000),
        "max_decoded_bytes": Bounds(int, 1024, 1 << 30),
        # libzmq's ZMQ_MAX_SOCKETS, at most its ZMQ_SOCKET_LIMIT (65,535).
        "max_sockets": Bounds(int, 64, 65535),
        # ZeroMQ stores the high-water mark in a C int: larger values fail in setsockopt.
        "high_water_mark": Bounds(int, 0, 2**31 - 1),
        "linger": Bounds(float, 0.0, 60.0),
        "exit_flush_timeout": Bounds(float, 0.0, 3600.0),
        # ZMQ_HANDSHAKE_IVL in ms, an int; 0 (no limit) is not offered.
        "handshake_timeout": Bounds(float, 0.1, 3600.0),
        "drain_timeout": Bounds(float, 0.0, 3600.0),
        # 0: no metrics endpoint.
        "metrics_port": Bounds(int, 0, _MAX_PORT),
        "max_queued_per_client": Bounds(int, 1, 1_000_000),
        "max_queued_bytes": Bounds(int, 1024, 1 << 40),
        # 0: never; at most a day (a longer idle connection is not "idle").
        "connection_idle_timeout": Bounds(float, 0.0, 86400.0),
    }
)


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
    redis_password_file: str | None = None
    ssl_ca_certs: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    sentinel_username: str | None = None
    sentinel_password_file: str | None = None
    etcd_password_file: str | None = None
    max_message_size: int = _limits.DEFAULT_MAX_MESSAGE_SIZE
    max_decoded_items: int = _limits.DEFAULT_MAX_DECODED_ITEMS
    max_decoded_depth: int = _limits.DEFAULT_MAX_DECODED_DEPTH
    max_decoded_bytes: int = _limits.DEFAULT_MAX_DECODED_BYTES
    max_sockets: int = 4096
    high_water_mark: int = 10000
    linger: float = 1.0
    exit_flush_timeout: float = 30.0
    handshake_timeout: float = 10.0
    drain_timeout: float = 5.0
    max_queued_per_client: int = 1000
    max_queued_bytes: int = 64 * 1024 * 1024
    connection_idle_timeout: float = 300.0
    curve_secret_key_file: str | None = None
    curve_public_keys_dir: str | None = None
    curve_server_keys_dir: str | None = None
    send_tracebacks: bool = False
    service_api: bool = True
    tracing: bool = False
    metrics_port: int = 0
    metrics_address: str = "127.0.0.1"
    matchmaker: MatchmakerSpec = dataclasses.field(default_factory=_default_matchmaker)

    def __post_init__(self) -> None:
        """Validate every field; see the class docstring for what is refused."""
        object.__setattr__(self, "bind_address", _check_address("bind_address", self.bind_address))
        object.__setattr__(
            self, "metrics_address", _check_address("metrics_address", self.metrics_address)
        )
        if self.host is not None:
            object.__setattr__(self, "host", _check_address("host", self.host))
        for name in _PATH_FIELDS:
            _check_path(name, getattr(self, name))
        _check_user_name("sentinel_username", self.sentinel_username)
        for name in _BOOL_FIELDS:
            if not isinstance(getattr(self, name), bool):
                msg = (
                    f"option {GROUP_NAME}.{name} must be true or false, got {getattr(self, name)!r}"
                )
                raise ConfigurationError(msg)
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

    @property
    def decode_limits(self) -> _limits.DecodeLimits:
        """The bounds of a decoded message body (`zmqactors.wire.decode_body`).

        A new value at each read: read it once and keep it.
        """
        return _limits.DecodeLimits(
            self.max_message_size,
            self.max_decoded_items,
            self.max_decoded_depth,
            self.max_decoded_bytes,
        )

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


# The paths among the options, checked for shape here and for content when used.
_PATH_FIELDS: Final = (
    "curve_secret_key_file",
    "curve_public_keys_dir",
    "curve_server_keys_dir",
    *REDIS_FILE_OPTIONS,
)
# The switches: true or false (in a URL also yes/no, on/off, 1/0).
_BOOL_FIELDS: Final = ("send_tracebacks", "service_api", "tracing")
# The address options that may be a wildcard (every interface).
_WILDCARD_FIELDS: Final = ("bind_address", "metrics_address")


def _check_path(name: str, value: object) -> None:
    if value is None:
        return
    if not isinstance(value, str):
        msg = f"option {GROUP_NAME}.{name} must be a path, got {value!r}"
        raise ConfigurationError(msg)
    if not value or "\x00" in value:
        msg = f"option {GROUP_NAME}.{name} must be a non-empty path without NUL, got {value!r}"
        raise ConfigurationError(msg)


def _check_user_name(name: str, value: object) -> None:
    if value is None:
        return
    if not isinstance(value, str) or not value or not value.isprintable():
        msg = (
            f"option {GROUP_NAME}.{name} must be a non-empty user name "
            f"without control characters, got {value!r}"
        )
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
        return _addresses.check_host(
            f"{GROUP_NAME}.{name}", value, wildcard=name in _WILDCARD_FIELDS
        )
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
    _numeric_opt(
        "executor_size",
        "Most endpoint methods an RPC server or notification listener runs at "
        "once. A transport's servers share one pool of threads, as large as "
        "the largest executor_size among them.",
    ),
    cfg.StrOpt(
        "matchmaker_url",
        default=DEFAULT_URL,
        # It may carry a Redis password: oslo.config masks secret options in logs.
        secret=True,
        help="Transport URL choosing the matchmaker: zmq:// (files in the user's "
        "runtime directory), zmq+memory://[NAME] (this process only), "
        "zmq+file:///DIR, zmq+redis://[USER[:PASSWORD]@]HOST[:PORT][/DB] "
        "(zmq+rediss:// over TLS) or "
        "zmq+sentinel://[USER[:PASSWORD]@]HOST:PORT[,HOST:PORT...]/MASTER "
        "(zmq+sentinels:// over TLS), "
        "zmq+etcd://[USER[:PASSWORD]@]HOST:PORT[,HOST:PORT...][/PREFIX] "
        "(zmq+etcds:// over TLS). Query "
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
    cfg.StrOpt(
        "redis_password_file",
        default=_DEFAULTS["redis_password_file"],
        help="Redis matchmaker: a file holding the password of the Redis server "
        "(of the master, with Sentinel) on one line, so that it appears in no URL "
        "or command line. It must be a regular file (not a symbolic link) of this "
        "user or root with no access for group or others (chmod 600). Without it "
        "and without a password in the URL, the environment variable "
        f"{REDIS_PASSWORD_ENV} is used if set.",
    ),
    cfg.StrOpt(
        "ssl_ca_certs",
        default=_DEFAULTS["ssl_ca_certs"],
        help="Redis or etcd matchmaker over TLS (zmq+rediss://, zmq+sentinels://, "
        "zmq+etcds://): the PEM "
        "file of the certificate authorities the server's certificate must chain "
        "to, and whose name must match the host in the URL. Unset: the system's "
        "trusted authorities.",
    ),
    cfg.StrOpt(
        "ssl_certfile",
        default=_DEFAULTS["ssl_certfile"],
        help="Redis or etcd matchmaker over TLS: this client's certificate (PEM), "
        "for a server that requires client certificates (Redis' tls-auth-clients "
        "yes, etcd's --client-cert-auth).",
    ),
    cfg.StrOpt(
        "ssl_keyfile",
        default=_DEFAULTS["ssl_keyfile"],
        help="Redis or etcd matchmaker over TLS: the private key (PEM) of "
        "ssl_certfile, this user's alone (chmod 600).",
    ),
    cfg.StrOpt(
        "sentinel_username",
        default=_DEFAULTS["sentinel_username"],
        help="Sentinel matchmaker: the ACL user to authenticate to the sentinels "
        "themselves as (the user in the URL is the master's). Unset: the "
        "sentinels' default user.",
    ),
    cfg.StrOpt(
        "sentinel_password_file",
        default=_DEFAULTS["sentinel_password_file"],
        help="Sentinel matchmaker: a file holding the sentinels' own password on "
        "one line, checked like redis_password_file. Without it, the environment "
        f"variable {SENTINEL_PASSWORD_ENV} is used if set; without either, the "
        "sentinels are contacted without a password.",
    ),
    cfg.StrOpt(
        "etcd_password_file",
        default=_DEFAULTS["etcd_password_file"],
        help="etcd matchmaker: a file holding the password of the etcd user named "
        "in the URL (zmq+etcd://USER@HOST:PORT) on one line, checked like "
        "redis_password_file. Without it and without a password in the URL, the "
        f"environment variable {ETCD_PASSWORD_ENV} is used if set.",
    ),
    _numeric_opt(
        "max_message_size",
        "Largest frame, in bytes, accepted from the network; larger ones are "
        "dropped (and a peer that sends one is disconnected by ZeroMQ). The "
        "default, 4 MiB, is an order of magnitude above the largest requests "
        "oslo.messaging services usually send (tens to hundreds of KiB).",
    ),
    _numeric_opt(
        "max_decoded_items",
        "Most objects (every value and map key) one message may hold; a "
        "message with more is dropped and counted (protocol_errors) before it "
        "is decoded. An empty map is one byte on the wire and about 72 bytes "
        "in memory, so this bounds what a small message can become. Checked "
        "for messages over 32 KiB (smaller ones cannot reach the limit).",
    ),
    _numeric_opt(
        "max_decoded_depth",
        "Deepest nesting of lists and maps in one message, the message itself "
        "counting as one; deeper ones are dropped and counted "
        "(protocol_errors). Checked for messages over 32 KiB; in smaller "
        "ones, nesting is bounded by their size and Python's recursion limit.",
    ),
    _numeric_opt(
        "max_decoded_bytes",
        "Most bytes of strings, byte strings and extension values one message "
        "may hold in all (their length on the wire; a string may take up to "
        "four times that in memory); more is dropped and counted "
        "(protocol_errors). Checked for messages over 32 KiB.",
    ),
    _numeric_opt(
        "max_sockets",
        "Most ZeroMQ sockets this process may open (ZMQ_MAX_SOCKETS of its "
        "one ZeroMQ context, set by the first transport the process starts; a "
        "later transport asking for more is logged and gets what is set). A "
        "socket past the limit fails with ResourceLimitError naming this "
        "option. The process's open-file limit (RLIMIT_NOFILE) is raised to "
        "its hard limit when a transport starts, and a warning names it "
        "if it stays below max_sockets plus the connections expected.",
    ),
    _numeric_opt(
        "high_water_mark",
        "ZeroMQ high-water mark (SNDHWM and RCVHWM) of network sockets, in "
        "messages, and how many more messages per server a client holds "
        "before cast() and call() block (until their timeout); 0 means unlimited.",
    ),
    _numeric_opt("linger", "Seconds a closing socket may spend sending the messages still queued."),
    _numeric_opt(
        "exit_flush_timeout",
        "Seconds a closing transport (close(), or the process's exit without "
        "it) keeps delivering the casts and notifications it accepted while "
        "their servers are connected: a server behind a flood reads them "
        "only after what queued before them. A connected server that reads "
        "nothing holds the close (and the exit) this long; what is still "
        "unsent then is counted (casts_unsent). Never less than linger.",
    ),
    _numeric_opt(
        "handshake_timeout",
        "Seconds a network connection may take to complete its ZeroMQ (and "
        "CURVE) handshake before it is dropped (ZMQ_HANDSHAKE_IVL), so peers "
        "that connect and stay silent do not hold connections open.",
    ),
    _numeric_opt(
        "drain_timeout",
        "Seconds a stopping server (stop(), SIGTERM through a context manager, "
        "oslo's server.stop()) keeps reading after it has deregistered: calls "
        "that still arrive are refused as 'stopping' (nothing ran: a client "
        "calling the topic retries another server), casts and notifications "
        "are still run, until none arrived for a quarter second or this long "
        "has passed; then it finishes what it runs and closes. 0: stop reading "
        "at once.",
    ),
    _numeric_opt(
        "max_queued_per_client",
        "Requests one client connection may have queued for one server. "
        "Beyond, a call gets ServerBusyError at once (nothing ran; retry later) "
        "and a cast makes the server stop reading until the queue halves.",
    ),
    _numeric_opt(
        "max_queued_bytes",
        "Bytes of requests a transport's servers may hold queued in all. "
        "Beyond, a call gets ServerBusyError at once and a cast is refused "
        "and counted (busy_refused).",
    ),
    _numeric_opt(
        "connection_idle_timeout",
        "Seconds a client's connection to a server may stay open with no call "
        "waiting for a reply, nothing sent and no reply received; it is then "
        "closed, and the next "
        "call or cast to that server opens a new one (the message is not lost). "
        "0 keeps connections open until the server goes away or the transport closes.",
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
        help="CurveZMQ: the directory of the public keys (NAME.key certificate files) "
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
    cfg.BoolOpt(
        "send_tracebacks",
        default=_DEFAULTS["send_tracebacks"],
        help="Send the full traceback of an endpoint's exception (file paths, "
        "source lines) to the caller in its RemoteError. Off: the caller gets the "
        "exception's type and message only, and the server logs the traceback "
        "with the message id. The oslo.messaging driver follows oslo's own "
        "convention instead (the traceback is part of oslo's failure payload).",
    ),
    cfg.BoolOpt(
        "service_api",
        default=_DEFAULTS["service_api"],
        help="Every RPC server answers the service API in namespace 'zmqactors': "
        "ping, info (its name, topic, version, endpoint methods and signatures, "
        "uptime, address, CURVE) and stats (calls, errors, refusals, in flight, "
        "p50/p99 handling time), as 'zmqactors ping/info/stats' ask. Off: those "
        "calls get NoSuchMethod. Clients reach them only as they reach the "
        "server's own methods (with CURVE: the allow-list).",
    ),
    cfg.BoolOpt(
        "tracing",
        default=_DEFAULTS["tracing"],
        help="OpenTelemetry tracing (needs the 'otel' extra): a span around each "
        "call, cast and notification on the client, whose W3C trace context "
        "travels with the message, and one around the endpoint call on the "
        "server, continuing that trace. Spans go to the tracer provider the "
        "application configured. Off: nothing is imported and nothing costs.",
    ),
    _numeric_opt(
        "metrics_port",
        "Serve Prometheus metrics (the transport's counters, each RPC server's "
        "requests, errors, refusals, in-flight requests and handling-time "
        "histogram) over HTTP at /metrics on this TCP port, from when the "
        "transport is first used until it closes. Needs the 'prometheus' extra. "
        "0: no endpoint (a service can still register "
        "zmqactors.transport.metrics.TransportCollector itself).",
    ),
    cfg.StrOpt(
        "metrics_address",
        default=_DEFAULTS["metrics_address"],
        help="Address the metrics endpoint (metrics_port) listens on; loopback by "
        "default: the counters name topics and servers. Same forms as bind_address.",
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


# Each query parameter and the type its value is converted to.
_PARAMETER_TYPES: Final[Mapping[str, type]] = MappingProxyType(
    {
        name: OPTION_BOUNDS[name].kind
        if name in OPTION_BOUNDS
        else bool
        if name in _BOOL_FIELDS
        else str
        for name in _SCALAR_FIELDS
    }
)


def parse_url(url: str, base: Settings | None = None) -> Settings:
    """Return ``base`` (default: ``Settings()``) with the matchmaker and options of ``url``.

    The URL's scheme and location choose the matchmaker (see `zmqactors.urls`);
    its query parameters, named like the options, override them.
    Raises `ConfigurationError` naming the URL, with any password redacted,
    and the problem: not a string, a missing or unknown scheme, a bad
    location, an unknown, repeated or malformed parameter, or a value out of
    bounds.
    """
    if not isinstance(url, str):
        # Neither shown nor repr()ed: a bytes URL may carry a password.
        msg = f"invalid transport URL: expected a str, got {type(url).__name__}"
        raise ConfigurationError(msg)
    safe_url = urls.redact(url)
    settings = Settings() if base is None else base
    try:
        spec, overrides = urls.split_url(url, _PARAMETER_TYPES)
        return settings.evolve(matchmaker=spec, **overrides)
    except ConfigurationError as exc:
        msg = f"invalid transport URL {safe_url!r}: {exc}"
        # Not chained: an inner message might quote the unredacted URL.
        raise ConfigurationError(msg) from None
