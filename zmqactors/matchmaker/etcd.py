"""A matchmaker that shares routes through an etcd cluster (v3 API, JSON gateway).

Layout: one etcd key per route, all under one prefix::

    <prefix>/routes/<quoted key>/<digest of server and address>
        value '["node-1","tcp://10.0.0.5:4321",null,30.0]'
        (server, address, CURVE key or null, TTL in seconds)
        lease  this backend's lease

Every route this backend registers hangs on one lease of TTL
``matchmaker_ttl`` (rounded up to whole seconds, as etcd counts them): the
actor's refresh every TTL/3 is one lease keep-alive, whatever the number of
routes. A stopped server deletes its keys (and revokes the lease when it has
none left); a killed one's keys are deleted by etcd when its lease expires.
When the lease is found gone (an outage longer than the TTL, a restored
cluster), a new one is granted and every route put again.

`watch` starts a thread that follows every change under the prefix on one
watch stream and reports the changed matchmaker keys; it resumes after the
last revision it saw when its member goes away, on the next member, so no
change is missed while another member answers.

Errors: `EtcdUnavailable` (an ``OSError``) when no member answers,
`EtcdError` when one answers with an error; the matchmaker actor decides
what a failure means.

Longer than 400 lines on purpose: the key layout, the leases and the
watch share one lock and one encoding of routes, and are read together.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
import urllib.parse
from typing import TYPE_CHECKING, Any, Final

import msgspec
import structlog

from zmqactors.errors import ConfigurationError
from zmqactors.matchmaker._checks import check_port, check_ttl, split_host_port
from zmqactors.matchmaker.base import Route
from zmqactors.matchmaker.gateway import EtcdError, EtcdUnavailable, Gateway, b64, unb64

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

    from zmqactors.matchmaker.access import EtcdAccess

__all__ = ["DEFAULT_PORT", "DEFAULT_PREFIX", "EtcdMatchmaker"]

_log = structlog.get_logger(__name__)

DEFAULT_PORT: Final = 2379
DEFAULT_PREFIX: Final = "/zmqactors"
# Per request; a member that does not answer in this time is skipped.
REQUEST_TIMEOUT: Final = 2.0
# A watch stream silent for this long is opened again (maybe on another
# member): a member cut off by the network sends nothing, not an error.
WATCH_IDLE: Final = 60.0
# Between attempts to open a watch when no member accepts one.
_WATCH_RETRY: Final = 0.5
# etcd's default limit of operations in one transaction.
_TXN_OPS: Final = 128
# gRPC NOT_FOUND, as etcd answers a put or keep-alive on a lease that is gone.
_NOT_FOUND: Final = 5

_VALUE: Final = msgspec.json.Decoder(tuple[str, str, str | None, float])
_ENCODE: Final = msgspec.json.Encoder()


class EtcdMatchmaker:
    """Routes in an etcd cluster (``zmq+etcd[s]://H1:P1[,H2:P2...][/PREFIX]``).

    Thread-safe: requests go through one `Gateway`, which serialises them.
    Nothing connects before the first request.
    """

    def __init__(
        self,
        endpoints: Sequence[tuple[str, int]],
        prefix: str = DEFAULT_PREFIX,
        *,
        access: EtcdAccess | None = None,
        timeout: float = REQUEST_TIMEOUT,
    ) -> None:
        """Prepare a client of the members ``endpoints``; any thread; connects lazily.

        Raises `ConfigurationError` when no endpoint is given, a host is empty
        or a port out of range, or the prefix does not start with ``/``.
        """
        if not endpoints:
            raise ConfigurationError("the etcd matchmaker needs at least one HOST:PORT")
        for host, port in endpoints:
            if not host:
                raise ConfigurationError("the etcd matchmaker got an empty host")
            check_port(port)
        if not prefix.startswith("/") or (prefix.endswith("/") and prefix != "/"):
            msg = f"the etcd prefix must start with '/' and not end with one, got {prefix!r}"
            raise ConfigurationError(msg)
        tls = None if access is None else access.tls_config()
        self._gateway = Gateway(
            endpoints,
            tls=tls,
            username=None if access is None else access.username,
            password=None if access is None else access.password,
            timeout=timeout,
        )
        self._root = f"{prefix.rstrip('/')}/routes/".encode()
        hosts = ",".join(f"[{h}]:{p}" if ":" in h else f"{h}:{p}" for h, p in endpoints)
        scheme = "etcd" if access is None else access.scheme
        self._description = f"{scheme}{hosts}{prefix}"
        self._lock = threading.Lock()
        # TTL in whole seconds -> the lease of the routes registered with it.
        self._leases: dict[int, int] = {}
        # etcd key -> (value, TTL in seconds) of every route registered here.
        self._mine: dict[bytes, tuple[bytes, int]] = {}
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None

    @classmethod
    def from_location(cls, location: str, access: EtcdAccess | None = None) -> EtcdMatchmaker:
        """Build one from a location ``H1:P1,H2:P2/PREFIX``, as `parse_url` makes.

        Raises `ConfigurationError` naming the location if it is malformed.
        """
        hosts, slash, prefix = location.partition("/")
        if not hosts:
            msg = f"bad etcd matchmaker location {location!r}: expected H1:P1[,H2:P2]/PREFIX"
            raise ConfigurationError(msg)
        endpoints = [split_host_port(item, DEFAULT_PORT) for item in hosts.split(",")]
        return cls(endpoints, "/" + prefix if slash and prefix else DEFAULT_PREFIX, access=access)

    def __repr__(self) -> str:
        """Show where etcd is (never the password), for logs."""
        return f"{type(self).__name__}({self._description})"

    # -- the Matchmaker interface --------------------------------------------

    def register(
        self, key: str, server: str, address: str, ttl: float, server_key: str | None = None
    ) -> None:
        """Add or refresh the route under this backend's lease of ``ttl``; any thread.

        Raises ``ValueError`` for a bad ``ttl``, `EtcdUnavailable` or `EtcdError`.
        """
        check_ttl(ttl)
        self.refresh(((key, server, address, server_key),), ttl)

    def refresh(self, routes: Iterable[tuple[str, str, str, str | None]], ttl: float) -> None:
        """Keep every route of ``routes`` (key, server, address, server key) alive; any thread.

        One lease keep-alive for all of them. When the lease is gone (or
        was never granted), or a route is not on it yet, the routes are put
        again: up to 128 in one transaction. Raises as `register`.
        """
        check_ttl(ttl)
        seconds = math.ceil(ttl)
        wanted = {
            self._name(key, server, address): _ENCODE.encode(
                (server, address, server_key, float(ttl))
            )
            for key, server, address, server_key in routes
        }
        with self._lock:
            missing = {n: v for n, v in wanted.items() if self._mine.get(n) != (v, seconds)}
            moved = {self._mine[n][1] for n in missing if n in self._mine}
            self._mine.update((n, (v, seconds)) for n, v in wanted.items())
            lease = self._leases.get(seconds)
            if lease is not None and not missing:
                answer = self._gateway.call("lease/keepalive", {"ID": lease})
                if int(answer.get("result", {}).get("TTL", 0) or 0) > 0:
                    return
                lease = None
            if lease is None:
                # Gone or never granted: every route of this TTL goes on a new one.
                lease = self._grant(seconds)
                missing = {n: v for n, (v, t) in self._mine.items() if t == seconds}
            try:
                self._put_all(missing, lease)
            except EtcdError as exc:
                if exc.code != _NOT_FOUND:
                    raise
                # The lease expired since it was last seen alive.
                lease = self._grant(seconds)
                self._put_all({n: v for n, (v, t) in self._mine.items() if t == seconds}, lease)
            self._revoke_unused(moved)

    def unregister(
        self, key: str, server: str, address: str, server_key: str | None = None
    ) -> None:
        """Delete the route's key; an absent route is not an error. Any thread.

        A lease left without routes is revoked too. Raises `EtcdUnavailable`
        or `EtcdError`.
        """
        del server_key  # the etcd key names (server, address) only
        name = self._name(key, server, address)
        with self._lock:
            entry = self._mine.pop(name, None)
            self._gateway.call("kv/deleterange", {"key": b64(name)})
            if entry is not None:
                self._revoke_unused({entry[1]})

    def unregister_many(self, routes: Iterable[tuple[str, str, str, str | None]]) -> None:
        """Delete the keys of ``routes``: revoking a lease when it carries nothing else.

        So a transport that stops with a thousand servers makes one request,
        not a thousand. Any thread. Raises `EtcdUnavailable` or `EtcdError`.
        """
        names = {self._name(key, server, address) for key, server, address, _ in routes}
        with self._lock:
            ttl_of = {n: self._mine.pop(n)[1] for n in names if n in self._mine}
            used = {seconds for _, seconds in self._mine.values()}
            alone = set(ttl_of.values()) - used
            # The keys on a lease that goes are deleted with it; the others one by one.
            deletes = [
                {"request_delete_range": {"key": b64(n)}}
                for n in sorted(names)
                if ttl_of.get(n) not in alone
            ]
            for start in range(0, len(deletes), _TXN_OPS):
                self._gateway.call("kv/txn", {"success": deletes[start : start + _TXN_OPS]})
            self._revoke_unused(alone)

    def lookup(self, key: str) -> tuple[Route, ...]:
        """The routes of ``key`` sorted by (server, address); any thread.

        Values that are not ours are skipped with a warning. Raises
        `EtcdUnavailable` or `EtcdError`.
        """
        directory = self._root + _quote(key) + b"/"
        return tuple(route for _, route in self._range(directory))

    def entries(self) -> tuple[tuple[str, Route], ...]:
        """Every (key, route) under the prefix, sorted; any thread. For operators."""
        found = list(self._range(self._root))
        found.sort(key=lambda entry: (entry[0], entry[1].server, entry[1].address))
        return tuple(found)

    def watch(self, notify: Callable[[tuple[str, ...] | None], None]) -> None:
        """Report changes under the prefix to ``notify``, from a thread of this backend.

        ``notify`` gets the changed matchmaker keys, or None when changes may
        have been missed (the first time, and after the cluster compacted away
        the revisions the watch had to resume from). Call once; `close` ends it.
        """
        if self._watcher is not None:
            msg = "the etcd matchmaker watches already"
            raise RuntimeError(msg)
        self._watcher = threading.Thread(
            target=self._watch_loop, args=(notify,), name="zmqactors-etcd-watch", daemon=True
        )
        self._watcher.start()

    def close(self) -> None:
        """Revoke the lease (best effort), end the watch; any thread; idempotent."""
        self._stop.set()
        with self._lock:
            leases = list(self._leases.values())
            self._leases.clear()
            self._mine.clear()
        for lease in leases:
            try:
                self._revoke(lease)
            except (EtcdUnavailable, EtcdError) as exc:
                # It expires on its own within its TTL.
                _log.debug("etcd lease not revoked", error=str(exc))
                break
        self._gateway.close()
        watcher = self._watcher
        if watcher is not None and watcher is not threading.current_thread():
            watcher.join(timeout=REQUEST_TIMEOUT * 2)

    # -- helpers -------------------------------------------------------------

    def _name(self, key: str, server: str, address: str) -> bytes:
        digest = hashlib.sha256(f"{server}\x00{address}".encode()).hexdigest()[:32]
        return self._root + _quote(key) + b"/" + digest.encode()

    def _grant(self, seconds: int) -> int:
        """A new lease of ``seconds`` for the routes of that TTL (caller holds the lock)."""
        answer = self._gateway.call("lease/grant", {"TTL": seconds})
        lease = int(answer["ID"])
        self._leases[seconds] = lease
        return lease

    def _revoke_unused(self, ttls: set[int]) -> None:
        """Revoke the leases of ``ttls`` that no route uses any more (caller holds the lock)."""
        used = {seconds for _, seconds in self._mine.values()}
        for seconds in ttls - used:
            lease = self._leases.pop(seconds, None)
            if lease is not None:
                self._revoke(lease)

    def _revoke(self, lease: int) -> None:
        try:
            self._gateway.call("kv/lease/revoke", {"ID": lease})
        except EtcdError as exc:
            if exc.code != _NOT_FOUND:
                raise
            # Expired already: what revoking was for.

    def _put_all(self, values: dict[bytes, bytes], lease: int) -> None:
        items = sorted(values.items())
        for start in range(0, len(items), _TXN_OPS):
            puts = [
                {"request_put": {"key": b64(n), "value": b64(v), "lease": lease}}
                for n, v in items[start : start + _TXN_OPS]
            ]
            self._gateway.call("kv/txn", {"success": puts})

    def _range(self, start: bytes) -> list[tuple[str, Route]]:
        answer = self._gateway.call(
            "kv/range", {"key": b64(start), "range_end": b64(_prefix_end(start))}
        )
        now = time.time()
        found: list[tuple[str, Route]] = []
        for kv in answer.get("kvs", ()):
            name = unb64(kv.get("key"))
            key = self._key_of(name)
            try:
                server, address, server_key, ttl = _VALUE.decode(unb64(kv.get("value")))
            except (msgspec.DecodeError, ValueError):
                key = None
            if key is None:
                _log.warning("skipping a foreign entry in the etcd matchmaker", key=repr(name))
                continue
            found.append((key, Route(server, address, now + ttl, server_key)))
        found.sort(key=lambda entry: (entry[0], entry[1].server, entry[1].address))
        return found

    def _key_of(self, name: bytes) -> str | None:
        """The matchmaker key of an etcd key under the prefix, or None if it is not a route."""
        if not name.startswith(self._root):
            return None
        quoted, slash, _ = name[len(self._root) :].rpartition(b"/")
        if not slash or not quoted:
            return None
        try:
            return urllib.parse.unquote(quoted.decode("ascii"), errors="strict")
        except UnicodeDecodeError:
            return None

    def _watch_loop(self, notify: Callable[[tuple[str, ...] | None], None]) -> None:
        """Follow the prefix until `close` (the backend's watch thread)."""
        revision: int | None = None
        failing = False
        while not self._stop.is_set():
            opened = False
            try:
                if revision is None:
                    answer = self._gateway.call(
                        "kv/range",
                        {
                            "key": b64(self._root),
                            "range_end": b64(_prefix_end(self._root)),
                            "limit": 1,
                            "keys_only": True,
                        },
                    )
                    revision = int(answer["header"]["revision"])
                    notify(None)
                request = {
                    "create_request": {
                        "key": b64(self._root),
                        "range_end": b64(_prefix_end(self._root)),
                        "start_revision": revision + 1,
                    }
                }
                for message in self._gateway.watch_lines(request, WATCH_IDLE):
                    opened = True
                    if failing:
                        failing = False
                        _log.info("etcd watch follows changes again", matchmaker=repr(self))
                    revision = self._on_watch_message(message, revision, notify)
                    if revision is None:
                        break
            except (EtcdUnavailable, EtcdError, KeyError, ValueError) as exc:
                if self._stop.is_set():
                    return
                if not failing and not opened:
                    failing = True
                    _log.warning("etcd watch failing; retrying", error=str(exc))
            if not opened:
                self._stop.wait(_WATCH_RETRY)

    def _on_watch_message(
        self,
        message: dict[str, Any],
        revision: int,
        notify: Callable[[tuple[str, ...] | None], None],
    ) -> int | None:
        """Report the keys one watch message changed; the revision seen, None to start over."""
        if "error" in message:
            raise EtcdError(str(message["error"].get("message", "watch error")))
        result = message.get("result", {})
        if result.get("canceled") or int(result.get("compact_revision", 0) or 0) > 0:
            # The revisions to resume from were compacted: read everything again.
            return None
        keys = set()
        for event in result.get("events", ()):
            key = self._key_of(unb64(event.get("kv", {}).get("key")))
            if key is not None:
                keys.add(key)
        if keys:
            notify(tuple(sorted(keys)))
        return max(revision, int(result.get("header", {}).get("revision", revision)))


def _quote(key: str) -> bytes:
    return urllib.parse.quote(key, safe="").encode("ascii")


def _prefix_end(prefix: bytes) -> bytes:
    # etcd's range end for "every key starting with prefix": the prefix with
    # its last byte incremented (our prefixes end in "/", never in 0xff).
    return prefix[:-1] + bytes([prefix[-1] + 1])
