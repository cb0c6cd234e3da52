"""A matchmaker that shares routes between the processes of one host through a directory.

Layout: one sub-directory per key and one small JSON file per route in it::

    <directory>/k.<base32(key)>/r.<base32(server)>.<base32(address)>.route
    {"key": "default/compute", "server": "node-1", "address": "tcp://...", "expires": 1.7e9,
     "server_key": "<40 Z85 characters>"}

``server_key`` (the server's CURVE public key) is written only when there is
one: files without it read as routes without a key, and older readers ignore it.

Names use lower-case base32 without padding, so they are safe on every file
system, including case-insensitive ones, and distinct names never collide: the
alphabet has no ``.``, which therefore separates the parts unambiguously. A name
that would be too long for the file system is replaced by ``h.<sha256>``
(the ``h.`` prefix keeps the two forms apart); the file still holds the full
key, server and address, and a reader ignores a file whose content does not
match its name.

Writers never modify a file in place: they write a temporary file in the same
directory and rename it over the route (``os.replace``), so a reader sees either
the old or the new content, never a mix, and concurrent writers in several
processes cannot lose each other's routes.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import math
import os
import secrets
import threading
import time
from pathlib import Path

import msgspec
import structlog

from zmqactors._paths import private_directory
from zmqactors.errors import ConfigurationError
from zmqactors.matchmaker.base import Route

__all__ = ["FileMatchmaker"]

_log = structlog.get_logger(__name__)

# How long an expired route, a corrupt file or an abandoned temporary file is
# left alone before a reader deletes it. Far longer than any refresh interval,
# so a reader never deletes something a live writer is about to refresh.
_GRACE = 60.0
# NAME_MAX is 255 bytes on common file systems; stay well below it.
_MAX_NAME = 200
# Route files are about a hundred bytes; anything much larger is not ours.
_MAX_FILE_SIZE = 64 * 1024
_TMP_PREFIX = ".tmp."
_SUFFIX = ".route"


class _Entry(msgspec.Struct, frozen=True, omit_defaults=True):
    """The content of one route file."""

    key: str
    server: str
    address: str
    expires: float
    server_key: str | None = None


# omit_defaults: a route without a key is written exactly as before CURVE.
_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder(_Entry)


class FileMatchmaker:
    """Routes stored as files under ``directory``, shared by every process on the host.

    Holds no open files or mutable state, so any thread may call any method and
    several instances (in one process or many) may use one directory at once.
    """

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        """Use ``directory``, creating it (mode 0o700) if needed; any thread.

        Raises `ConfigurationError` naming the path if it is empty, cannot be
        created, is not a directory or is not writable.
        """
        if not os.fspath(directory):
            msg = "the file matchmaker needs a directory, got an empty path"
            raise ConfigurationError(msg)
        path = private_directory(directory, "file matchmaker directory")
        self._directory = path

    @property
    def directory(self) -> Path:
        """The absolute path of the shared directory."""
        return self._directory

    def __repr__(self) -> str:
        """Show the directory, for logs."""
        return f"{type(self).__name__}(directory={self._directory!r})"

    def register(
        self, key: str, server: str, address: str, ttl: float, server_key: str | None = None
    ) -> None:
        """Add or refresh the route (with ``server_key``), valid for ``ttl`` seconds; any thread.

        Raises ``ValueError`` if ``ttl`` is not a positive finite number and
        ``OSError`` if the file cannot be written.
        """
        _check_ttl(ttl)
        data = _ENCODER.encode(_Entry(key, server, address, time.time() + ttl, server_key))
        key_dir = self._directory / _key_dir_name(key)
        try:
            key_dir.mkdir(mode=0o700, exist_ok=True)
        except FileNotFoundError:
            # Someone removed the whole directory (a /tmp cleaner, say): make it
            # again, private as at construction, rather than fail every heartbeat.
            self._directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            key_dir.mkdir(mode=0o700, exist_ok=True)
        # pid and thread id keep writers apart; the random part guards against a
        # pid reused after a crash left its temporary file behind.
        tmp = key_dir / f"{_TMP_PREFIX}{os.getpid()}.{threading.get_ident()}.{secrets.token_hex(8)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
            finally:
                os.close(fd)
            # No fsync: routes are soft state refreshed by every heartbeat, and a
            # file emptied by a power loss is skipped like any unreadable one.
            tmp.replace(key_dir / _route_file_name(server, address))
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
            raise

    def unregister(
        self,
        key: str,
        server: str,
        address: str,
        server_key: str | None = None,  # noqa: ARG002 - one file per (server, address)
    ) -> None:
        """Delete the route's file; an absent route is not an error. Any thread.

        Raises ``OSError`` if the file exists but cannot be deleted.
        """
        path = self._directory / _key_dir_name(key) / _route_file_name(server, address)
        path.unlink(missing_ok=True)

    def lookup(self, key: str) -> tuple[Route, ...]:
        """Return the unexpired routes of ``key`` sorted by (server, address); any thread.

        Unreadable or foreign files are skipped. Routes expired for more than a
        minute, and corrupt or abandoned temporary files older than that, are
        deleted on the way (failures to delete are ignored). Raises ``OSError``
        only if the key's directory exists but cannot be listed.
        """
        now = time.time()
        try:
            entries = os.scandir(self._directory / _key_dir_name(key))
        except FileNotFoundError:
            return ()
        routes: list[Route] = []
        with entries:
            for entry in entries:
                if entry.name.startswith("."):
                    if entry.name.startswith(_TMP_PREFIX):
                        _remove_if_old(entry, now)
                    continue
                route = _read_route(entry, key, now)
                if route is not None:
                    routes.append(route)
        routes.sort(key=lambda route: (route.server, route.address))
        return tuple(routes)

    def entries(self) -> tuple[tuple[str, Route], ...]:
        """Every unexpired (key, route) under the directory, sorted; any thread.

        For operators (``zmqactors targets``): it reads every file, so it is
        slower than `lookup`. Unreadable or corrupt files are skipped.
        """
        now = time.time()
        found: list[tuple[str, Route]] = []
        with os.scandir(self._directory) as key_dirs:
            for key_dir in key_dirs:
                if key_dir.name.startswith(".") or not key_dir.is_dir(follow_symlinks=False):
                    continue
                found.extend(_read_key_dir(key_dir.path, now))
        found.sort(key=lambda item: (item[0], item[1].server, item[1].address))
        return tuple(found)

    def close(self) -> None:
        """Do nothing: there is nothing to release. Any thread; idempotent; never raises."""


def _read_key_dir(path: str, now: float) -> list[tuple[str, Route]]:
    """The live (key, route) pairs stored in one key directory, the key read from each file."""
    found: list[tuple[str, Route]] = []
    with os.scandir(path) as files:
        for entry in files:
            if entry.name.startswith(".") or not entry.is_file(follow_symlinks=False):
                continue
            try:
                with Path(entry.path).open("rb") as file:
                    data = file.read(_MAX_FILE_SIZE + 1)
                key = _DECODER.decode(data).key
                stored = _decode(data, entry.name, key)
            except (OSError, msgspec.DecodeError, ValueError):
                continue
            if Path(path).name == _key_dir_name(key) and stored.expires > now:
                found.append((key, _route(stored)))
    return found


def _read_route(entry: os.DirEntry[str], key: str, now: float) -> Route | None:
    """Return the live route stored in ``entry``, or None if it is expired, foreign or corrupt."""
    if not entry.is_file(follow_symlinks=False):
        return None
    try:
        with Path(entry.path).open("rb") as file:
            data = file.read(_MAX_FILE_SIZE + 1)
    except FileNotFoundError:
        # Unregistered or cleaned up between scandir and open.
        return None
    except OSError as exc:
        _log.warning("cannot read matchmaker route file", path=entry.path, error=str(exc))
        return None
    try:
        stored = _decode(data, entry.name, key)
    except (msgspec.DecodeError, ValueError) as exc:
        _log.warning("skipping corrupt matchmaker route file", path=entry.path, error=str(exc))
        _remove_if_old(entry, now)
        return None
    if stored.expires > now:
        return _route(stored)
    # "not >" so a NaN expiry counts as long expired. A writer could refresh the
    # route between our read and this unlink; it has then been dead for a
    # minute, and its next heartbeat writes the file again.
    if not stored.expires > now - _GRACE:
        _remove(entry.path)
    return None


def _route(stored: _Entry) -> Route:
    return Route(stored.server, stored.address, stored.expires, stored.server_key)


def _decode(data: bytes, name: str, key: str) -> _Entry:
    """Parse a route file called ``name`` in ``key``'s directory.

    Raises ``msgspec.DecodeError`` for bad JSON or fields, ``ValueError`` for an
    oversized file or content that belongs under another name.
    """
    if len(data) > _MAX_FILE_SIZE:
        msg = f"larger than {_MAX_FILE_SIZE} bytes"
        raise ValueError(msg)
    stored = _DECODER.decode(data)
    # Guards against hashed names that collide and files copied by hand.
    if stored.key != key or name != _route_file_name(stored.server, stored.address):
        msg = "content does not match the file's name"
        raise ValueError(msg)
    return stored


def _remove_if_old(entry: os.DirEntry[str], now: float) -> None:
    """Delete ``entry`` if it was last written more than ``_GRACE`` seconds ago."""
    try:
        mtime = entry.stat(follow_symlinks=False).st_mtime
    except OSError:
        return
    if mtime < now - _GRACE:
        _remove(entry.path)


def _remove(path: str) -> None:
    """Delete ``path``; a reader's clean-up must never make a lookup fail."""
    try:
        Path(path).unlink(missing_ok=True)
    except OSError as exc:
        _log.debug("cannot delete stale matchmaker file", path=path, error=str(exc))


def _encode(text: str) -> str:
    return base64.b32encode(text.encode()).decode("ascii").rstrip("=").lower()


def _digest(*parts: str) -> str:
    # JSON of the list keeps ("a", "b.c") and ("a.b", "c") apart.
    return hashlib.sha256(_ENCODER.encode(parts)).hexdigest()


def _key_dir_name(key: str) -> str:
    name = f"k.{_encode(key)}"
    return name if len(name) <= _MAX_NAME else f"h.{_digest(key)}"


def _route_file_name(server: str, address: str) -> str:
    name = f"r.{_encode(server)}.{_encode(address)}{_SUFFIX}"
    return name if len(name) <= _MAX_NAME else f"h.{_digest(server, address)}{_SUFFIX}"


def _check_ttl(ttl: float) -> None:
    valid = isinstance(ttl, (int, float)) and not isinstance(ttl, bool)
    if not (valid and math.isfinite(ttl) and ttl > 0):
        msg = f"matchmaker ttl must be a positive finite number of seconds, got {ttl!r}"
        raise ValueError(msg)
