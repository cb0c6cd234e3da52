"""Matchmakers that share routes between hosts through Redis, directly or found by Sentinel.

Layout: one sorted set per matchmaker key, one member per route::

    zmqactors:routes:<key>   ZSET   member '["node-1","tcp://10.0.0.5:4321"]'
                                    score  expiry, in Redis-clock milliseconds

A server with CURVE adds its public key as a third element,
``'["node-1","tcp://10.0.0.5:4321","<40 Z85 characters>"]'``; members of two
elements (older writers, servers without CURVE) are routes without a key.

Why not one string key per route (``SET ... PX ttl``) with an index of them: a
lookup then reads the index and every route key, and has to clean the index of
keys Redis expired. With the sorted set a lookup is one ``ZRANGEBYSCORE`` of the
unexpired members, and the issue's rule still holds in the form that matters:

- *one entry per (key, server, address)*: the member is exactly that pair under
  the key; registering again moves its score, never adds a second entry;
- *written atomically with an expiry*: a registration is one Lua script, which
  Redis runs atomically: it drops expired members, sets the route's expiry (its
  score) and extends the set's own ``PEXPIRE`` to cover its longest-lived
  member. A route is never visible without its expiry, and lookups hide members
  whose expiry has passed, so each route ages out on its own even while its
  neighbours are refreshed; a set whose routes all expired disappears with them.

Changes are pushed: a registration that adds a route (or drops expired
ones) and an unregistration that removes one publish the matchmaker key on
the channel ``zmqactors:routes:changed``, from inside the same script, and
`watch` follows that channel from a thread of the backend. A plain channel
rather than keyspace notifications, which need ``notify-keyspace-events``
set on the server (off by default, and often not ours to change). A route
that merely expires is published when the next registration of its key
drops it; until then clients learn of it as before (their call finds the
address dead, or their cache ages).

Expiries are measured on the Redis server's clock (``TIME`` inside the
scripts), the one clock every host shares: a host whose clock is off by
seconds registers and ages out like the others. A lookup turns them into this
host's ``time.time()`` for `Route.expires`.

Needs Redis 5 or later (a script that writes after reading ``TIME``). Errors
from redis-py (``redis.exceptions.ConnectionError``, ``TimeoutError``,
``AuthenticationError``, ``ResponseError``, all ``RedisError``) are raised as
they are: the matchmaker actor decides what a failure means. Connections time
out after a second or two and are retried once, so a Redis that is down fails
fast instead of stalling the matchmaker actor.

Longer than 400 lines on purpose: the Redis and Sentinel backends share
the key schema, the Lua scripts and the error translation.
"""

from __future__ import annotations

import contextlib
import threading
import time
from typing import TYPE_CHECKING, Any, Final, cast

import msgspec
import redis
import redis.sentinel
import structlog
from redis.backoff import NoBackoff
from redis.retry import Retry

from zmqactors.errors import ConfigurationError
from zmqactors.matchmaker._checks import check_port as _check_port
from zmqactors.matchmaker._checks import check_ttl as _check_ttl
from zmqactors.matchmaker._checks import split_host_port as _split_host_port
from zmqactors.matchmaker.access import RedisAccess
from zmqactors.matchmaker.base import Route

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Sequence

__all__ = ["RedisMatchmaker", "SentinelMatchmaker"]

_log = structlog.get_logger(__name__)

PREFIX: Final = "zmqactors:routes:"
DEFAULT_PORT: Final = 6379
DEFAULT_SENTINEL_PORT: Final = 26379
# Short enough that a Redis that is down or unreachable costs the matchmaker
# actor a second or two per attempt, long enough for a busy server on a LAN.
CONNECT_TIMEOUT: Final = 1.0
SOCKET_TIMEOUT: Final = 2.0
_SCAN_COUNT: Final = 500
# How often the watch thread looks whether it should stop.
_WATCH_POLL: Final = 0.5

CHANNEL: Final = "zmqactors:routes:changed"

# KEYS[1]: the key's set; ARGV[1]: the member; ARGV[2]: the TTL in milliseconds;
# ARGV[3]: the channel; ARGV[4]: the matchmaker key, published when the set's
# members change. pcall: an ACL user without the channel (Redis 7 gives new
# users none) still registers; its clients poll. The expiry is written with 3
# decimals (microseconds) so Route.expires keeps time.time()'s precision; the
# set lives as long as its longest-lived member.
_REGISTER: Final = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local ttl = tonumber(ARGV[2])
local dropped = redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%.3f', now))
local added = redis.call('ZADD', KEYS[1], string.format('%.3f', now + ttl), ARGV[1])
local ttl_ms = math.ceil(ttl)
if redis.call('PTTL', KEYS[1]) < ttl_ms then
  redis.call('PEXPIRE', KEYS[1], ttl_ms)
end
if dropped + added > 0 then
  redis.pcall('PUBLISH', ARGV[3], ARGV[4])
end
return 1
"""

# KEYS[1]: the key's set; ARGV[1]: the member; ARGV[2]: the channel;
# ARGV[3]: the matchmaker key, published when the member was there.
_UNREGISTER: Final = """
if redis.call('ZREM', KEYS[1], ARGV[1]) > 0 then
  redis.pcall('PUBLISH', ARGV[2], ARGV[3])
end
return 1
"""

# KEYS[1]: the key's set. Returns {now, {member, score, member, score, ...}}
# with the unexpired members only; read-only, so it also runs on a replica.
_LOOKUP: Final = """
local t = redis.call('TIME')
local now = string.format('%.3f', tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000)
return {now, redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf', 'WITHSCORES')}
"""

_MEMBER_ENCODER: Final = msgspec.json.Encoder()
_MEMBER_DECODER: Final = msgspec.json.Decoder(list[str])
_PAIR: Final = 2
_WITH_KEY: Final = 3


class _RedisRoutes:
    """The routes in one Redis database, through any client; shared by both backends.

    Thread-safe: redis-py's client takes a pooled connection per command, so
    any thread may call any method. Nothing connects before the first command.
    """

    def __init__(self, client: redis.Redis, description: str) -> None:
        self._client = client
        self._description = description
        # Script objects run EVALSHA and load the script again after NOSCRIPT,
        # which is what a restarted or failed-over Redis answers first.
        self._register = client.register_script(_REGISTER)
        self._unregister = client.register_script(_UNREGISTER)
        self._lookup = client.register_script(_LOOKUP)
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None

    @property
    def client(self) -> redis.Redis:
        """The redis-py client this backend talks through."""
        return self._client

    def __repr__(self) -> str:
        """Show where Redis is (never the password), for logs."""
        return f"{type(self).__name__}({self._description})"

    def register(
        self, key: str, server: str, address: str, ttl: float, server_key: str | None = None
    ) -> None:
        """Add or refresh the route (with ``server_key``), valid for ``ttl`` seconds; any thread.

        One atomic script: it also drops the key's expired routes. Raises
        ``ValueError`` if ``ttl`` is not a positive finite number, and redis-py's
        ``RedisError`` subclasses if Redis is unreachable or refuses.
        """
        _check_ttl(ttl)
        with self._named():
            self._register(
                keys=[_redis_key(key)],
                args=[_member(server, address, server_key), repr(ttl * 1000), CHANNEL, key],
            )

    def refresh(self, routes: Iterable[tuple[str, str, str, str | None]], ttl: float) -> None:
        """`register` every (key, server, address, server key) of ``routes``; any thread.

        One pipeline: one round trip for all of them, not one per route.
        Raises as `register`.
        """
        _check_ttl(ttl)
        with self._named():
            pipe = self._client.pipeline(transaction=False)
            for key, server, address, server_key in routes:
                self._register(
                    keys=[_redis_key(key)],
                    args=[_member(server, address, server_key), repr(ttl * 1000), CHANNEL, key],
                    client=pipe,
                )
            pipe.execute()

    def unregister(
        self, key: str, server: str, address: str, server_key: str | None = None
    ) -> None:
        """Remove the route (registered with ``server_key``) at once; any thread.

        An absent route is not an error.

        Raises redis-py's ``RedisError`` subclasses if Redis is unreachable or refuses.
        """
        with self._named():
            self._unregister(
                keys=[_redis_key(key)], args=[_member(server, address, server_key), CHANNEL, key]
            )

    def lookup(self, key: str) -> tuple[Route, ...]:
        """Return the unexpired routes of ``key`` sorted by (server, address); any thread.

        Members that are not ours are skipped with a warning. Raises redis-py's
        ``RedisError`` subclasses if Redis is unreachable or refuses (a
        ``ResponseError`` if the key holds something other than a sorted set).
        """
        with self._named():
            return self._read(_redis_key(key))

    def entries(self) -> tuple[tuple[str, Route], ...]:
        """Return every live (key, route) in this database, sorted; any thread.

        For operators (``zmqactors targets``): it scans the keyspace with
        ``SCAN``, which never blocks Redis but costs a round trip per key.
        Keys under our prefix that are not sorted sets are skipped. Raises
        redis-py's ``RedisError`` subclasses if Redis is unreachable.
        """
        found: list[tuple[str, Route]] = []
        with self._named():
            for name in self._client.scan_iter(match=f"{PREFIX}*", count=_SCAN_COUNT):
                raw = bytes(name)
                try:
                    key = raw[len(PREFIX) :].decode()
                    routes = self._read(raw)
                except (UnicodeDecodeError, redis.ResponseError):
                    continue
                found.extend((key, route) for route in routes)
        found.sort(key=lambda entry: (entry[0], entry[1].server, entry[1].address))
        return tuple(found)

    def unregister_many(self, routes: Iterable[tuple[str, str, str, str | None]]) -> None:
        """`unregister` every (key, server, address, server key) of ``routes`` in one pipeline.

        Any thread. Raises as `unregister`.
        """
        with self._named():
            pipe = self._client.pipeline(transaction=False)
            for key, server, address, server_key in routes:
                self._unregister(
                    keys=[_redis_key(key)],
                    args=[_member(server, address, server_key), CHANNEL, key],
                    client=pipe,
                )
            pipe.execute()

    def watch(self, notify: Callable[[tuple[str, ...] | None], None]) -> None:
        """Report the keys published on `CHANNEL` to ``notify``, from a thread of this backend.

        ``notify`` gets None first and after each reconnection (changes may
        have been missed meanwhile). Call once; `close` ends the thread.
        """
        if self._watcher is not None:
            msg = "the Redis matchmaker watches already"
            raise RuntimeError(msg)
        self._watcher = threading.Thread(
            target=self._watch_loop, args=(notify,), name="zmqactors-redis-watch", daemon=True
        )
        self._watcher.start()

    def _watch_loop(self, notify: Callable[[tuple[str, ...] | None], None]) -> None:
        """Follow the channel until `close` (the backend's watch thread)."""
        failing = False
        while not self._stop.is_set():
            pubsub = self._client.pubsub()
            try:
                pubsub.subscribe(CHANNEL)
                while not self._stop.is_set():
                    message = pubsub.get_message(timeout=_WATCH_POLL)
                    kind = None if message is None else message.get("type")
                    if kind == "subscribe":
                        # Subscribed (again): what changed meanwhile was missed.
                        if failing:
                            failing = False
                            _log.info("Redis matchmaker watch follows changes again")
                        notify(None)
                    elif kind == "message" and message is not None:
                        data = message.get("data")
                        if isinstance(data, bytes):
                            notify((data.decode(errors="replace"),))
            except redis.exceptions.NoPermissionError as exc:
                # An ACL user without this channel (&zmqactors:routes:changed):
                # retrying will not help; clients poll as before.
                _log.warning("Redis matchmaker watch not permitted; polling only", error=str(exc))
                return
            except redis.RedisError as exc:
                if not failing:
                    failing = True
                    _log.warning("Redis matchmaker watch failing; retrying", error=str(exc))
                self._stop.wait(_WATCH_POLL)
            finally:
                with contextlib.suppress(redis.RedisError, OSError):
                    pubsub.close()

    def close(self) -> None:
        """Close the client's connections, end the watch; any thread; idempotent; never raises.

        A later call would connect again: the matchmaker actor calls this last.
        """
        self._stop.set()
        watcher = self._watcher
        if watcher is not None and watcher is not threading.current_thread():
            watcher.join(timeout=_WATCH_POLL + SOCKET_TIMEOUT)
        # Redis.close() releases the pool only when it built the pool itself,
        # which depends on the redis-py version for Sentinel clients.
        self._client.close()
        self._client.connection_pool.disconnect()

    @contextlib.contextmanager
    def _named(self) -> Iterator[None]:
        """Re-raise redis-py's errors, same class, with this matchmaker's name in front.

        So that a failure (a refused password, a TLS handshake that fails)
        says which matchmaker failed; the name never holds the password.
        """
        try:
            yield
        except redis.RedisError as exc:
            try:
                named = type(exc)(f"{self!r}: {exc}")
            except Exception:  # noqa: BLE001 - an error class with another signature
                raise exc from None
            raise named from None

    def _read(self, name: str | bytes) -> tuple[Route, ...]:
        reply = self._lookup(keys=[name])
        redis_now = float(reply[0])
        local_now = time.time()
        flat = reply[1]
        routes: list[Route] = []
        for member, score in zip(flat[::2], flat[1::2], strict=True):
            try:
                fields = _MEMBER_DECODER.decode(member)
            except msgspec.DecodeError:
                fields = []
            if len(fields) not in (_PAIR, _WITH_KEY):
                _log.warning("skipping a foreign member in the Redis matchmaker", key=name)
                continue
            server_key = fields[2] if len(fields) == _WITH_KEY else None
            expires = local_now + (float(score) - redis_now) / 1000
            routes.append(Route(fields[0], fields[1], expires, server_key))
        routes.sort(key=lambda route: (route.server, route.address))
        return tuple(routes)


class RedisMatchmaker(_RedisRoutes):
    """Routes in one Redis server (``zmq+redis[s]://[USER[:PASSWORD]@]HOST[:PORT][/DB]``)."""

    def __init__(
        self,
        host: str,
        port: int = DEFAULT_PORT,
        db: int = 0,
        password: str | None = None,
        *,
        access: RedisAccess | None = None,
        socket_timeout: float = SOCKET_TIMEOUT,
        connect_timeout: float = CONNECT_TIMEOUT,
    ) -> None:
        """Prepare a client of ``host:port`` database ``db``; any thread; connects lazily.

        ``access`` (user, password, TLS) replaces ``password`` when given.
        Raises `ConfigurationError` for an empty host, a port out of range or
        a negative database number.
        """
        if not host:
            raise ConfigurationError("the redis matchmaker needs a host")
        _check_port(port)
        if db < 0:
            msg = f"the Redis database must be a non-negative integer, got {db}"
            raise ConfigurationError(msg)
        if access is None:
            access = RedisAccess(password=password)
        client = redis.Redis(
            host=host,
            port=port,
            db=db,
            **access.client_options(),
            **_connection_options(socket_timeout, connect_timeout),
        )
        shown = f"[{host}]" if ":" in host else host
        super().__init__(client, f"{access.scheme}{shown}:{port}/{db}")

    @classmethod
    def from_location(
        cls, location: str, password: str | None = None, access: RedisAccess | None = None
    ) -> RedisMatchmaker:
        """Build one from a location ``HOST:PORT/DB`` (``[IPV6]:PORT/DB``), as `parse_url` makes.

        Raises `ConfigurationError` naming the location if it is malformed.
        """
        host_port, slash, db = location.rpartition("/")
        if not slash or not (db.isascii() and db.isdigit()):
            msg = f"bad redis matchmaker location {location!r}: expected HOST:PORT/DB"
            raise ConfigurationError(msg)
        host, port = _split_host_port(host_port, DEFAULT_PORT)
        return cls(host, port, int(db), password, access=access)


class SentinelMatchmaker(_RedisRoutes):
    """Routes in the master that Redis Sentinel names (``zmq+sentinel://H1:P1,H2:P2/NAME``).

    Every command goes to the master the sentinels name. redis-py asks them
    only when it opens a connection, and a master demoted by a failover keeps
    accepting writes on the connections it has until the sentinels reconfigure
    it (up to ten seconds later), and then drops them in its first resync. So
    `register` and `unregister` ask the sentinels first and, if the master
    moved, close the idle connections to the old one: registrations land on the
    new master from the first heartbeat after the failover. Lookups keep using
    open connections (the old master's routes are at most a heartbeat old).
    The user and password are the master's (and its replicas'); the
    sentinels get their own (``sentinel_username``, ``sentinel_password``
    of ``access``), and TLS when the master has it.
    """

    def __init__(
        self,
        sentinels: Sequence[tuple[str, int]],
        master: str,
        password: str | None = None,
        *,
        access: RedisAccess | None = None,
        socket_timeout: float = SOCKET_TIMEOUT,
        connect_timeout: float = CONNECT_TIMEOUT,
    ) -> None:
        """Prepare a client of ``master`` found through ``sentinels``; any thread; connects lazily.

        Raises `ConfigurationError` when no sentinel is given, a host is empty,
        a port is out of range or the master name is empty.
        """
        if not sentinels:
            raise ConfigurationError("the sentinel matchmaker needs at least one sentinel")
        for host, port in sentinels:
            if not host:
                raise ConfigurationError("the sentinel matchmaker got an empty host")
            _check_port(port)
        if not master:
            raise ConfigurationError("the sentinel matchmaker needs a master name")
        if access is None:
            access = RedisAccess(password=password)
        options = _connection_options(socket_timeout, connect_timeout)
        self._sentinel = redis.sentinel.Sentinel(
            list(sentinels),
            # Without the options the sentinels' clients would keep redis-py's
            # default retries with backoff: seconds per down sentinel.
            sentinel_kwargs={**options, **access.sentinel_options()},
            **access.client_options(),
            **options,
        )
        client: redis.Redis = self._sentinel.master_for(master)
        # master_for() always builds a SentinelConnectionPool.
        self._pool = cast("redis.sentinel.SentinelConnectionPool", client.connection_pool)
        hosts = ",".join(f"[{h}]:{p}" if ":" in h else f"{h}:{p}" for h, p in sentinels)
        scheme = access.scheme.replace("redis", "sentinel", 1)
        super().__init__(client, f"{scheme}{hosts}/{master}")

    @classmethod
    def from_location(
        cls, location: str, password: str | None = None, access: RedisAccess | None = None
    ) -> SentinelMatchmaker:
        """Build one from a location ``H1:P1,H2:P2/MASTER``, as `parse_url` makes.

        Raises `ConfigurationError` naming the location if it is malformed.
        """
        # Host parts never hold "/", so the first one starts the master's name.
        hosts, slash, master = location.partition("/")
        if not slash or not hosts or not master:
            msg = f"bad sentinel matchmaker location {location!r}: expected H1:P1,H2:P2/MASTER"
            raise ConfigurationError(msg)
        sentinels = [_split_host_port(item, DEFAULT_SENTINEL_PORT) for item in hosts.split(",")]
        return cls(sentinels, master, password, access=access)

    def register(
        self, key: str, server: str, address: str, ttl: float, server_key: str | None = None
    ) -> None:
        """Add or refresh the route on the current master; see `_RedisRoutes.register`.

        Any thread. Raises as `_RedisRoutes.register` does, and redis-py's
        ``MasterNotFoundError`` (a ``ConnectionError``) if no sentinel names a
        live master when a new connection is needed.
        """
        self._follow_failover()
        super().register(key, server, address, ttl, server_key)

    def unregister(
        self, key: str, server: str, address: str, server_key: str | None = None
    ) -> None:
        """Remove the route from the current master; see `_RedisRoutes.unregister`. Any thread."""
        self._follow_failover()
        super().unregister(key, server, address, server_key)

    def refresh(self, routes: Iterable[tuple[str, str, str, str | None]], ttl: float) -> None:
        """Refresh the routes on the current master; see `_RedisRoutes.refresh`. Any thread."""
        self._follow_failover()
        super().refresh(routes, ttl)

    def unregister_many(self, routes: Iterable[tuple[str, str, str, str | None]]) -> None:
        """Remove the routes from the current master; see `_RedisRoutes.unregister_many`."""
        self._follow_failover()
        super().unregister_many(routes)

    def _follow_failover(self) -> None:
        try:
            # Asks the sentinels; if the master moved, closes the pool's idle
            # connections so that the next command connects to the new one.
            self._pool.get_master_address()  # type: ignore[no-untyped-call]
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            # No sentinel answers: keep writing where we were, which is right
            # unless a failover happened, and then as good as it gets. The
            # command itself reports a master that is gone too.
            _log.debug("sentinels not answering; using the known master", error=str(exc))

    def close(self) -> None:
        """Close the master's and the sentinels' connections; any thread; idempotent."""
        super().close()
        for sentinel in self._sentinel.sentinels:
            sentinel.close()


def _connection_options(socket_timeout: float, connect_timeout: float) -> dict[str, Any]:
    # One retry without backoff, on connection errors only: a connection that
    # Redis closed (a restart) is replaced transparently, while a Redis that is
    # down fails at once. redis-py's default (10 retries with backoff) would
    # block the matchmaker actor for seconds per command.
    return {
        "socket_timeout": socket_timeout,
        "socket_connect_timeout": connect_timeout,
        "retry": Retry(NoBackoff(), 1, supported_errors=(redis.ConnectionError,)),
        "retry_on_error": [redis.ConnectionError],
    }


def _redis_key(key: str) -> str:
    return PREFIX + key


def _member(server: str, address: str, server_key: str | None) -> bytes:
    # Deterministic bytes for a route, so registering again updates the member
    # and unregistering names exactly it. Without a key: the pre-CURVE form.
    if server_key is None:
        return _MEMBER_ENCODER.encode((server, address))
    return _MEMBER_ENCODER.encode((server, address, server_key))
