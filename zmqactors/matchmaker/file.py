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

Where Linux inotify exists, `FileMatchmaker.watch` follows the directory
(`zmqactors.matchmaker.inotify`) and reports the keys whose routes appeared
or disappeared; elsewhere clients keep polling.

Writers never modify a file in place: they write a temporary file in the same
directory and rename it over the route (``os.replace``), so a reader sees either
the old or the new content, never a mix, and concurrent writers in several
processes cannot lose each other's routes.

Longer than 400 lines on purpose: the strict-directory rules and every
no-follow open, rename and unlink are security code, kept in the one file a
reviewer reads to know what the backend trusts.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import hashlib
import math
import os
import secrets
import stat
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec
import structlog

from zmqactors._paths import check_owner_and_mode, private_directory
from zmqactors.errors import ConfigurationError, SecurityError
from zmqactors.matchmaker import inotify
from zmqactors.matchmaker.base import Route

if TYPE_CHECKING:
    from collections.abc import Callable

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
# A route further ahead than this is ignored when no max_ttl is given (the
# transport always gives its matchmaker_ttl): an hour, never forever.
DEFAULT_MAX_TTL = 3600.0
# What open(O_NOFOLLOW) and open(O_DIRECTORY | O_NOFOLLOW) answer for a link.
_LINK_ERRNOS = frozenset({errno.ELOOP, errno.ENOTDIR})


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

    Strict, like OpenSSH's ``StrictModes``: the directory must belong to this
    user (or root) and be writable by nobody else, and it must not be a
    symbolic link. Inside it, key directories and route files are opened
    without following symbolic links (``O_NOFOLLOW``) and relative to the
    key directory's descriptor, so a planted link is never read, written or
    deleted through (a link itself may be removed, never its target). A route
    whose ``expires`` lies more than ``max_ttl`` seconds ahead is ignored:
    nobody honest wrote it.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        max_ttl: float = DEFAULT_MAX_TTL,
        on_bad_route: Callable[[], object] | None = None,
    ) -> None:
        """Use ``directory``, creating it (mode 0o700) if needed; any thread.

        ``max_ttl``: the longest TTL a writer may have used (the transport
        passes its ``matchmaker_ttl``); routes expiring later are ignored.
        ``on_bad_route`` is called (from the looking-up thread) for each
        route ignored that way and each symbolic link found where a key
        directory or a route file belongs.

        Raises `ConfigurationError` naming the path if it is empty, cannot be
        created, is not a directory or is not writable, or if ``max_ttl`` is
        not a positive finite number; `SecurityError` naming the path if it is
        a symbolic link, is owned by another user (root excepted) or is
        writable by group or others.
        """
        if not os.fspath(directory):
            msg = "the file matchmaker needs a directory, got an empty path"
            raise ConfigurationError(msg)
        try:
            _check_ttl(max_ttl)
        except ValueError:
            msg = f"the file matchmaker's max_ttl must be a positive finite number, got {max_ttl!r}"
            raise ConfigurationError(msg) from None
        path = private_directory(directory, "file matchmaker directory")
        _check_strict(path)
        self._directory = path
        # Writers compute expires from the same clock; the second absorbs rounding.
        self._horizon = max_ttl + 1.0
        self._on_bad_route = on_bad_route
        self._watch: inotify.TreeWatch | None = None

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
        ``OSError`` if the file cannot be written (``ELOOP`` when a symbolic
        link sits where the key's directory belongs).
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
        dir_fd = _open_dir(key_dir)
        try:
            _write_route(dir_fd, _route_file_name(server, address), data)
        finally:
            os.close(dir_fd)

    def unregister(
        self,
        key: str,
        server: str,
        address: str,
        server_key: str | None = None,  # noqa: ARG002 - one file per (server, address)
    ) -> None:
        """Delete the route's file; an absent route is not an error. Any thread.

        Never follows a symbolic link (a link in the file's place is removed
        itself). Raises ``OSError`` if the file exists but cannot be deleted.
        """
        key_dir = self._directory / _key_dir_name(key)
        try:
            dir_fd = _open_dir(key_dir)
        except FileNotFoundError:
            return
        except OSError as exc:
            if exc.errno not in _LINK_ERRNOS:
                raise
            # Nothing of ours lives behind a link: there is nothing to remove.
            self._bad_route("a symbolic link where a key directory belongs", str(key_dir))
            return
        try:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(_route_file_name(server, address), dir_fd=dir_fd)
        finally:
            os.close(dir_fd)

    def lookup(self, key: str) -> tuple[Route, ...]:
        """Return the unexpired routes of ``key`` sorted by (server, address); any thread.

        Unreadable or foreign files are skipped; symbolic links and routes
        beyond ``max_ttl`` are skipped and reported to ``on_bad_route``.
        Routes expired for more than a minute, and corrupt or abandoned
        temporary files older than that, are deleted on the way (failures to
        delete are ignored). Raises ``OSError`` only if the key's directory
        exists but cannot be listed.
        """
        found = self._scan(self._directory / _key_dir_name(key), key, time.time())
        routes = [route for _, route in found]
        routes.sort(key=lambda route: (route.server, route.address))
        return tuple(routes)

    def entries(self) -> tuple[tuple[str, Route], ...]:
        """Every unexpired (key, route) under the directory, sorted; any thread.

        For operators (``zmqactors targets``): it reads every file, so it is
        slower than `lookup`. Unreadable, corrupt or untrusted files are skipped.
        """
        now = time.time()
        found: list[tuple[str, Route]] = []
        with os.scandir(self._directory) as key_dirs:
            for key_dir in key_dirs:
                if key_dir.name.startswith(".") or not key_dir.is_dir(follow_symlinks=False):
                    continue
                with contextlib.suppress(OSError):
                    found.extend(self._scan(Path(key_dir.path), None, now))
        found.sort(key=lambda item: (item[0], item[1].server, item[1].address))
        return tuple(found)

    def watch(self, notify: Callable[[tuple[str, ...] | None], None]) -> None:
        """Report the keys whose routes appear or disappear, from an inotify thread.

        ``notify`` gets None when changes may have been missed (the kernel's
        queue overflowed, or a key directory's name is a digest). Does
        nothing where inotify is missing or cannot be set up: clients then
        poll. Call once; `close` ends the thread.
        """
        if self._watch is not None or not inotify.available():
            return

        def report(name: str | None) -> None:
            key = None if name is None else _key_of_dir_name(name)
            notify(None if key is None else (key,))

        try:
            self._watch = inotify.TreeWatch(self._directory, report)
        except OSError as exc:
            # Out of inotify watches (fs.inotify.max_user_watches): poll.
            _log.info("file matchmaker not watched; polling only", error=str(exc))

    def close(self) -> None:
        """End the watch, if any. Any thread; idempotent; never raises."""
        if self._watch is not None:
            self._watch.close()

    def _bad_route(self, why: str, path: str) -> None:
        _log.warning("ignoring an untrusted matchmaker route file", path=path, reason=why)
        if self._on_bad_route is not None:
            self._on_bad_route()

    def _scan(self, key_dir: Path, key: str | None, now: float) -> list[tuple[str, Route]]:
        """The live (key, route) pairs in ``key_dir``; ``key`` None: read it from each file."""
        try:
            dir_fd = _open_dir(key_dir)
        except FileNotFoundError:
            return []
        except OSError as exc:
            if exc.errno in _LINK_ERRNOS:
                self._bad_route("a symbolic link where a key directory belongs", str(key_dir))
                return []
            raise
        found: list[tuple[str, Route]] = []
        try:
            with os.scandir(dir_fd) as entries:
                names = [entry.name for entry in entries]
            for name in names:
                if name.startswith("."):
                    if name.startswith(_TMP_PREFIX):
                        _remove_if_old(dir_fd, name, now)
                    continue
                item = self._read_route(dir_fd, key_dir, name, key, now)
                if item is not None:
                    found.append(item)
        finally:
            os.close(dir_fd)
        return found

    def _read_route(
        self, dir_fd: int, key_dir: Path, name: str, key: str | None, now: float
    ) -> tuple[str, Route] | None:
        """The live route in file ``name``, or None if expired, foreign, corrupt or untrusted."""
        stored = self._load(dir_fd, key_dir, name, key, now)
        if stored is None:
            return None
        if stored.expires > now + self._horizon:
            self._bad_route("expires further ahead than matchmaker_ttl allows", str(key_dir / name))
            return None
        if stored.expires > now:
            return stored.key, _route(stored)
        # "not >" so a NaN expiry counts as long expired. A writer could refresh the
        # route between our read and this unlink; it has then been dead for a
        # minute, and its next heartbeat writes the file again.
        if key is not None and not stored.expires > now - _GRACE:
            _remove(dir_fd, name)
        return None

    def _load(
        self, dir_fd: int, key_dir: Path, name: str, key: str | None, now: float
    ) -> _Entry | None:
        """The entry in file ``name``, or None (logged when looking up ``key``) if unusable."""
        path = str(key_dir / name)
        try:
            data = _read_file(dir_fd, name)
        except FileNotFoundError:
            # Unregistered or cleaned up between scandir and open.
            return None
        except OSError as exc:
            if exc.errno in _LINK_ERRNOS:
                self._bad_route("a symbolic link where a route file belongs", path)
            elif key is not None:
                _log.warning("cannot read matchmaker route file", path=path, error=str(exc))
            return None
        try:
            return _decode(data, name, key, key_dir.name)
        except (msgspec.DecodeError, ValueError) as exc:
            if key is not None:
                _log.warning("skipping corrupt matchmaker route file", path=path, error=str(exc))
                _remove_if_old(dir_fd, name, now)
            return None


def _check_strict(path: Path) -> None:
    """Refuse a directory others could plant routes in; see `FileMatchmaker`."""
    info = os.lstat(path)
    if stat.S_ISLNK(info.st_mode):
        msg = f"file matchmaker directory '{path}' is a symbolic link: give the real path"
        raise SecurityError(msg)
    check_owner_and_mode(
        path,
        "file matchmaker directory",
        info,
        forbidden=stat.S_IWGRP | stat.S_IWOTH,
        meaning="writable by group or others",
        fix=f"chmod go-w {path}",
    )


def _open_dir(path: Path) -> int:
    """Open directory ``path`` without following a final symbolic link (``ELOOP``/``ENOTDIR``)."""
    return os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)


def _read_file(dir_fd: int, name: str) -> bytes:
    """Read up to one byte past the size limit of regular file ``name``, never through a link."""
    # O_NONBLOCK: a FIFO planted in a route's place must not block the reader.
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
    fd = os.open(name, flags, dir_fd=dir_fd)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file")
        return os.read(fd, _MAX_FILE_SIZE + 1)
    finally:
        os.close(fd)


def _write_route(dir_fd: int, name: str, data: bytes) -> None:
    """Write ``data`` to a temporary file in ``dir_fd`` and rename it over ``name``."""
    # pid and thread id keep writers apart; the random part guards against a
    # pid reused after a crash left its temporary file behind.
    tmp = f"{_TMP_PREFIX}{os.getpid()}.{threading.get_ident()}.{secrets.token_hex(8)}"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(tmp, flags, 0o600, dir_fd=dir_fd)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
        # No fsync: routes are soft state refreshed by every heartbeat, and a
        # file emptied by a power loss is skipped like any unreadable one.
        # rename() replaces a link in the route's place; it never writes through it.
        os.replace(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp, dir_fd=dir_fd)
        raise


def _route(stored: _Entry) -> Route:
    return Route(stored.server, stored.address, stored.expires, stored.server_key)


def _decode(data: bytes, name: str, key: str | None, dir_name: str) -> _Entry:
    """Parse a route file called ``name`` in directory ``dir_name`` of ``key`` (None: any key).

    Raises ``msgspec.DecodeError`` for bad JSON or fields, ``ValueError`` for an
    oversized file or content that belongs under another name.
    """
    if len(data) > _MAX_FILE_SIZE:
        msg = f"larger than {_MAX_FILE_SIZE} bytes"
        raise ValueError(msg)
    stored = _DECODER.decode(data)
    # Guards against hashed names that collide and files copied by hand.
    wrong_key = (key is not None and stored.key != key) or dir_name != _key_dir_name(stored.key)
    if wrong_key or name != _route_file_name(stored.server, stored.address):
        msg = "content does not match the file's name"
        raise ValueError(msg)
    return stored


def _remove_if_old(dir_fd: int, name: str, now: float) -> None:
    """Delete ``name`` if it was last written more than ``_GRACE`` seconds ago."""
    try:
        mtime = os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mtime
    except OSError:
        return
    if mtime < now - _GRACE:
        _remove(dir_fd, name)


def _remove(dir_fd: int, name: str) -> None:
    """Delete ``name`` (a link itself, never its target); a clean-up never fails a lookup."""
    try:
        os.unlink(name, dir_fd=dir_fd)
    except FileNotFoundError:
        pass
    except OSError as exc:
        _log.debug("cannot delete stale matchmaker file", file=name, error=str(exc))


def _encode(text: str) -> str:
    return base64.b32encode(text.encode()).decode("ascii").rstrip("=").lower()


def _digest(*parts: str) -> str:
    # JSON of the list keeps ("a", "b.c") and ("a.b", "c") apart.
    return hashlib.sha256(_ENCODER.encode(parts)).hexdigest()


def _key_dir_name(key: str) -> str:
    name = f"k.{_encode(key)}"
    return name if len(name) <= _MAX_NAME else f"h.{_digest(key)}"


def _key_of_dir_name(name: str) -> str | None:
    """The key a ``k.`` directory name encodes; None for a digest (``h.``) or junk."""
    if not name.startswith("k."):
        return None
    text = name[2:].upper()
    try:
        return base64.b32decode(text + "=" * (-len(text) % 8)).decode()
    except (ValueError, UnicodeDecodeError):
        return None


def _route_file_name(server: str, address: str) -> str:
    name = f"r.{_encode(server)}.{_encode(address)}{_SUFFIX}"
    return name if len(name) <= _MAX_NAME else f"h.{_digest(server, address)}{_SUFFIX}"


def _check_ttl(ttl: float) -> None:
    valid = isinstance(ttl, (int, float)) and not isinstance(ttl, bool)
    if not (valid and math.isfinite(ttl) and ttl > 0):
        msg = f"matchmaker ttl must be a positive finite number of seconds, got {ttl!r}"
        raise ValueError(msg)
