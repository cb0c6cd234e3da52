"""Discovery backends behind one small interface, and a factory that picks one.

- `MemoryMatchmaker`: one process (``zmq+memory://``), for tests.
- `FileMatchmaker`: the processes of one host, through a directory (``zmq://``).
- `RedisMatchmaker` / `SentinelMatchmaker` (``zmqactors.matchmaker.redis``):
  several hosts, through Redis (``zmq+redis://``) or the master Redis Sentinel
  names (``zmq+sentinel://``). Imported only when asked for, so the package
  works without redis-py (the ``redis`` extra).
- `EtcdMatchmaker` (``zmqactors.matchmaker.etcd``): several hosts, through an
  etcd cluster (``zmq+etcd://``): routes on leases, changes pushed by a watch.
  Needs nothing beyond the standard library.

Backends may also offer ``watch(notify)`` (push the keys that changed; see
`Watching`) and ``refresh(routes, ttl)`` (refresh many registrations at the
cost of one request; see `Refreshing`); the matchmaker actor uses them when
they are there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from zmqactors.errors import ConfigurationError
from zmqactors.matchmaker.access import EtcdAccess, RedisAccess, etcd_access, redis_access
from zmqactors.matchmaker.base import Matchmaker, Refreshing, Route, Watching
from zmqactors.matchmaker.file import DEFAULT_MAX_TTL, FileMatchmaker
from zmqactors.matchmaker.memory import MemoryMatchmaker

if TYPE_CHECKING:
    from collections.abc import Callable

    from zmqactors.options import Settings

__all__ = [
    "EtcdAccess",
    "FileMatchmaker",
    "Matchmaker",
    "MemoryMatchmaker",
    "RedisAccess",
    "Refreshing",
    "Route",
    "Watching",
    "create_matchmaker",
    "matchmaker_for",
]

_KINDS = ("file", "memory", "redis", "sentinel", "etcd")


def create_matchmaker(
    kind: str,
    location: str,
    password: str | None = None,
    *,
    max_ttl: float = DEFAULT_MAX_TTL,
    on_bad_route: Callable[[], object] | None = None,
    access: RedisAccess | EtcdAccess | None = None,
) -> Matchmaker:
    """Build the matchmaker of ``kind`` at ``location``; any thread.

    ``location`` is the store's name for ``"memory"``, the directory for
    ``"file"``, ``HOST:PORT/DB`` for ``"redis"`` and ``H1:P1,H2:P2/MASTER`` for
    ``"sentinel"`` and ``H1:P1,H2:P2/PREFIX`` for ``"etcd"`` (as
    `zmqactors.options.parse_url` writes them). ``password``
    is for the network backends; the local ones ignore it, so one configuration
    can switch between backends. ``max_ttl`` and ``on_bad_route`` are the file
    backend's (see `FileMatchmaker`); ``access`` (user names, passwords, TLS)
    the network backends', replacing ``password`` when given. Nothing connects here: a network
    backend connects on its first command.

    Raises `ConfigurationError` naming the value for an unknown kind, a bad
    location, or a redis kind when redis-py is not installed; `SecurityError`
    for a file directory others could write.
    """
    match kind:
        case "memory":
            return MemoryMatchmaker(location)
        case "file":
            return FileMatchmaker(location, max_ttl=max_ttl, on_bad_route=on_bad_route)
        case "redis" | "sentinel":
            if not isinstance(access, RedisAccess):
                access = RedisAccess(password=password)
            return _redis_backend(kind, location, access)
        case "etcd":
            # Lazy like redis: most processes never need it.
            from zmqactors.matchmaker.etcd import EtcdMatchmaker  # noqa: PLC0415

            if not isinstance(access, EtcdAccess):
                access = EtcdAccess(password=password)
            return EtcdMatchmaker.from_location(location, access=access)
        case _:
            msg = f"unknown matchmaker kind {kind!r}; expected one of {', '.join(_KINDS)}"
            raise ConfigurationError(msg)


def matchmaker_for(
    settings: Settings, *, on_bad_route: Callable[[], object] | None = None
) -> Matchmaker:
    """Build the matchmaker ``settings`` name, with the options it takes; any thread.

    The file backend ignores routes beyond ``settings.matchmaker_ttl`` and
    reports them to ``on_bad_route``; the Redis ones get their credentials and
    TLS files through `redis_access`, the etcd one through `etcd_access`
    (which read any password file here).
    Raises as `create_matchmaker` and `redis_access` do.
    """
    spec = settings.matchmaker
    access: RedisAccess | EtcdAccess | None = None
    if spec.kind in {"redis", "sentinel"}:
        access = redis_access(settings)
    elif spec.kind == "etcd":
        access = etcd_access(settings)
    return create_matchmaker(
        spec.kind,
        spec.location,
        spec.password,
        max_ttl=settings.matchmaker_ttl,
        on_bad_route=on_bad_route,
        access=access,
    )


def _redis_backend(kind: str, location: str, access: RedisAccess) -> Matchmaker:
    try:
        # Lazy: redis-py is an optional dependency (the "redis" extra).
        from zmqactors.matchmaker import redis  # noqa: PLC0415
    except ImportError as exc:
        if (exc.name or "").partition(".")[0] != "redis":
            raise
        msg = (
            f"the {kind} matchmaker needs redis-py, which is not installed: "
            "pip install 'zmqactors[redis]'"
        )
        raise ConfigurationError(msg) from exc
    if kind == "redis":
        return redis.RedisMatchmaker.from_location(location, access=access)
    return redis.SentinelMatchmaker.from_location(location, access=access)
