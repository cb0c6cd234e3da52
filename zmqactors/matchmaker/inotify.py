"""Routes appearing and disappearing in the file matchmaker's directory, from Linux inotify.

`TreeWatch` follows a directory of key directories (two levels, as the file
backend lays them out) through ``inotify(7)``, called with ctypes: no
dependency. It reports the key directory in which a route file appeared (a
name it had not seen there) or disappeared; a route file renamed over
itself (a refresh, every TTL/3 per server) is not a change and is not
reported, so a thousand servers refreshing cost their watchers nothing.
Hidden names (the writers' temporary files) are ignored. When the kernel's
queue overflowed, it reports None: anything may have changed.

`available()` is False where there is no inotify (not Linux, or a libc
without it): the file backend then keeps polling only.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import os
import select
import struct
import sys
import threading
from typing import TYPE_CHECKING, Final

import structlog

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

__all__ = ["TreeWatch", "available"]

_log = structlog.get_logger(__name__)

_IN_MOVED_FROM: Final = 0x40
_IN_MOVED_TO: Final = 0x80
_IN_CREATE: Final = 0x100
_IN_DELETE: Final = 0x200
_IN_DELETE_SELF: Final = 0x400
_IN_Q_OVERFLOW: Final = 0x4000
_IN_IGNORED: Final = 0x8000
_IN_ONLYDIR: Final = 0x01000000
_IN_DONT_FOLLOW: Final = 0x02000000
_IN_ISDIR: Final = 0x40000000
_IN_NONBLOCK: Final = os.O_NONBLOCK
_IN_CLOEXEC: Final = os.O_CLOEXEC
_ROOT_MASK: Final = _IN_CREATE | _IN_MOVED_TO | _IN_ONLYDIR | _IN_DONT_FOLLOW
_DIR_MASK: Final = (
    _IN_MOVED_TO | _IN_MOVED_FROM | _IN_DELETE | _IN_DELETE_SELF | _IN_ONLYDIR | _IN_DONT_FOLLOW
)
_EVENT: Final = struct.Struct("iIII")
_READ_SIZE: Final = 64 * 1024


def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.inotify_init1.argtypes = [ctypes.c_int]
        libc.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
    except (OSError, AttributeError):
        return None
    return libc


_LIBC: Final = _libc()


def available() -> bool:
    """Whether this system has inotify (Linux)."""
    return _LIBC is not None


class TreeWatch:
    """Follows ``root`` and its sub-directories from a thread of its own until `close`.

    ``report`` gets the name of the sub-directory whose entries changed, or
    None after an overflow; it runs in the watch thread and must not block.
    """

    def __init__(self, root: Path, report: Callable[[str | None], None]) -> None:
        """Start watching; raises ``OSError`` when inotify cannot be set up."""
        if _LIBC is None:
            msg = "inotify is not available on this system"
            raise OSError(errno.ENOSYS, msg)
        self._libc = _LIBC
        self._root = root
        self._report = report
        fd = self._libc.inotify_init1(_IN_NONBLOCK | _IN_CLOEXEC)
        if fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1 failed")
        self._fd = fd
        self._wake_r, self._wake_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        # watch descriptor -> sub-directory name ("" for the root)
        self._dirs: dict[int, str] = {}
        # sub-directory name -> the visible names seen in it
        self._names: dict[str, set[str]] = {}
        try:
            self._add(self._root, "", _ROOT_MASK)
            with os.scandir(self._root) as entries:
                subdirs = [e.name for e in entries if e.is_dir(follow_symlinks=False)]
            for name in subdirs:
                if not name.startswith("."):
                    self._add_dir(name)
        except OSError:
            self._close_fds()
            raise
        self._thread = threading.Thread(target=self._run, name="zmqactors-file-watch", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """End the thread and release the descriptors; any thread; idempotent."""
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=5.0)

    def _close_fds(self) -> None:
        for fd in (self._fd, self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)

    def _add(self, path: Path, name: str, mask: int) -> None:
        wd = self._libc.inotify_add_watch(self._fd, os.fsencode(path), mask)
        if wd < 0:
            raise OSError(ctypes.get_errno(), f"inotify_add_watch({path}) failed")
        self._dirs[wd] = name

    def _add_dir(self, name: str) -> None:
        """Watch sub-directory ``name`` and note what it holds now (watch thread or init)."""
        try:
            self._add(self._root / name, name, _DIR_MASK)
            with os.scandir(self._root / name) as entries:
                self._names[name] = {e.name for e in entries if not e.name.startswith(".")}
        except OSError as exc:
            # Gone again, or a symbolic link (refused): the backend polls it.
            _log.debug("not watching a matchmaker key directory", name=name, error=str(exc))

    def _run(self) -> None:
        poller = select.poll()
        poller.register(self._fd, select.POLLIN)
        poller.register(self._wake_r, select.POLLIN)
        try:
            while True:
                ready = {fd for fd, _ in poller.poll()}
                if self._wake_r in ready:
                    return
                try:
                    data = os.read(self._fd, _READ_SIZE)
                except BlockingIOError:
                    continue
                for changed in self._parse(data):
                    self._report(changed)
        except OSError as exc:
            _log.warning("file matchmaker watch stopped; polling only", error=str(exc))
        finally:
            self._close_fds()

    def _parse(self, data: bytes) -> set[str | None]:
        changed: set[str | None] = set()
        offset = 0
        while offset + _EVENT.size <= len(data):
            wd, mask, _cookie, length = _EVENT.unpack_from(data, offset)
            offset += _EVENT.size
            raw = data[offset : offset + length].rstrip(b"\0")
            offset += length
            if mask & _IN_Q_OVERFLOW:
                changed.add(None)
            else:
                self._event(wd, mask, os.fsdecode(raw), changed)
        return changed

    def _event(self, wd: int, mask: int, name: str, changed: set[str | None]) -> None:
        """Note one event: add to ``changed`` the sub-directory whose routes changed."""
        directory = self._dirs.get(wd)
        if directory is None:
            return
        if mask & _IN_IGNORED:
            del self._dirs[wd]
            self._names.pop(directory, None)
            return
        if not name or name.startswith("."):
            return
        if directory == "":
            if mask & _IN_ISDIR:
                self._add_dir(name)
                if self._names.get(name):
                    changed.add(name)
            return
        names = self._names.setdefault(directory, set())
        if mask & _IN_MOVED_TO:
            if name not in names:
                names.add(name)
                changed.add(directory)
        elif mask & (_IN_MOVED_FROM | _IN_DELETE) and name in names:
            names.discard(name)
            changed.add(directory)
