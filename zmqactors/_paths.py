"""Files and directories of this user: the ones the library creates, the secrets it reads."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from zmqactors.errors import ConfigurationError, SecurityError

__all__ = [
    "check_owner_and_mode",
    "owner_or_mode_problem",
    "private_directory",
    "read_secret_file",
]

# A password file holds one line; anything much larger is not one.
_MAX_SECRET = 4096


def private_directory(directory: str | os.PathLike[str], what: str) -> Path:
    """Make ``directory`` (mode 0700 when new) and return it, absolute.

    Raises `ConfigurationError` naming ``what`` and the path when it is not a
    directory, cannot be created, or is not writable.
    """
    # Absolute, so a later os.chdir() in the application does not move it.
    path = Path(directory).absolute()
    if path.exists() and not path.is_dir():
        msg = f"{what} '{path}' exists but is not a directory"
        raise ConfigurationError(msg)
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        msg = f"{what} '{path}' cannot be created: {exc.strerror or exc}"
        raise ConfigurationError(msg) from None
    if not os.access(path, os.W_OK | os.X_OK):
        msg = f"{what} '{path}' is not writable"
        raise ConfigurationError(msg)
    return path


def read_secret_file(path: str, what: str) -> str:
    """Return the one-line secret in file ``path`` (its final newline removed); any thread.

    The file is opened without following a symbolic link and must be a
    regular file owned by this user (or root) that neither group nor others
    may read or write, like OpenSSH's private keys. Raises
    `ConfigurationError` naming ``what`` and the path when it is missing,
    unreadable, empty, too large or not one line, and `SecurityError` when it
    is a symbolic link, not a regular file, someone else's, or open to group
    or others. The secret itself never appears in a message.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            msg = f"{what} '{path}' is a symbolic link: give the file itself"
            raise SecurityError(msg) from None
        msg = f"{what} '{path}' cannot be read: {exc.strerror or exc}"
        raise ConfigurationError(msg) from None
    try:
        info = os.fstat(fd)
        _check_private_file(path, what, info)
        data = os.read(fd, _MAX_SECRET + 1)
    finally:
        os.close(fd)
    if len(data) > _MAX_SECRET:
        msg = f"{what} '{path}' is larger than {_MAX_SECRET} bytes: it should hold one line"
        raise ConfigurationError(msg)
    try:
        text = data.decode()
    except UnicodeDecodeError:
        msg = f"{what} '{path}' is not UTF-8 text"
        raise ConfigurationError(msg) from None
    secret = text.removesuffix("\n").removesuffix("\r")
    if not secret or "\n" in secret or "\r" in secret:
        msg = f"{what} '{path}' must hold exactly one non-empty line"
        raise ConfigurationError(msg)
    return secret


def check_private_path(path: str, what: str) -> None:
    """Refuse a private file (a TLS client key) that is not this user's alone; any thread.

    For files that another library opens by name: the same rules as
    `read_secret_file` (a regular file, not a symbolic link, owned by this
    user or root, no access for group or others), checked on the path.
    Raises `SecurityError` naming ``what`` and the path, `ConfigurationError`
    when it cannot be examined.
    """
    try:
        info = os.lstat(path)
    except OSError as exc:
        msg = f"{what} '{path}' cannot be read: {exc.strerror or exc}"
        raise ConfigurationError(msg) from None
    if stat.S_ISLNK(info.st_mode):
        msg = f"{what} '{path}' is a symbolic link: give the file itself"
        raise SecurityError(msg)
    _check_private_file(path, what, info)


def _check_private_file(path: str, what: str, info: os.stat_result) -> None:
    if not stat.S_ISREG(info.st_mode):
        msg = f"{what} '{path}' is not a regular file"
        raise SecurityError(msg)
    check_owner_and_mode(
        path,
        what,
        info,
        forbidden=0o077,
        meaning="readable or writable by group or others",
        fix=f"chmod 600 {path}",
    )


def check_owner_and_mode(
    path: str | os.PathLike[str],
    what: str,
    info: os.stat_result,
    *,
    forbidden: int,
    meaning: str,
    fix: str,
) -> None:
    """Refuse a file or directory someone else could have written or read; any thread.

    Raises `SecurityError` naming ``what`` and ``path`` when ``info`` shows an
    owner other than this user or root, or any of the ``forbidden`` mode
    bits (which mean ``meaning``; ``fix`` says what to run).
    """
    problem = owner_or_mode_problem(info, forbidden=forbidden, meaning=meaning, fix=fix)
    if problem is not None:
        msg = f"{what} '{os.fspath(path)}' {problem}"
        raise SecurityError(msg)


def owner_or_mode_problem(
    info: os.stat_result, *, forbidden: int, meaning: str, fix: str
) -> str | None:
    """What is wrong with a file's owner or mode, as the words after its name; None if nothing.

    The rules of `check_owner_and_mode`, for callers that phrase the error
    themselves (the CURVE key files).
    """
    # Like OpenSSH's StrictModes: only this user or root may own what we trust.
    if info.st_uid not in {os.geteuid(), 0}:
        return f"is owned by uid {info.st_uid}, not by this user (uid {os.geteuid()}) or root"
    if info.st_mode & forbidden:
        return f"is {meaning} (mode {stat.S_IMODE(info.st_mode):04o}): run '{fix}'"
    return None
