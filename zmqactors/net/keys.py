"""CURVE key files: reading and checking key pairs and public-key directories, writing new pairs.

Everything here fails closed, raising `SecurityError` (`ConfigurationError`
for a bad request to write keys) with the file and the problem: a missing,
unreadable or malformed key file, a secret key that group or others may read.
Pure file work and Z85 checks: no socket, no thread. `zmqactors.net.security`
puts the keys on sockets; `zmqactors.net.zap` checks clients against them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import os
import re
import shutil
import stat
import tempfile
from pathlib import Path
from typing import Final

import zmq.auth

from zmqactors._paths import owner_or_mode_problem, private_directory
from zmqactors.core.pins import ServerKeyPins
from zmqactors.errors import ConfigurationError, SecurityError

__all__ = [
    "KeyPair",
    "check_key_directory",
    "check_server_key",
    "load_key_pair",
    "load_public_key_files",
    "load_public_keys",
    "load_server_pins",
    "write_key_pair",
]

# A CURVE key is 32 bytes, 40 characters in Z85.
_Z85_KEY_LENGTH: Final = 40
_Z85_ALPHABET: Final = frozenset(
    b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#"
)
# Certificate files are a few hundred bytes; refuse to read anything much larger.
_MAX_KEY_FILE: Final = 64 * 1024


@dataclasses.dataclass(frozen=True, slots=True)
class KeyPair:
    """A CURVE key pair read from ``path``: Z85 text as bytes (40 each); the secret is not shown."""

    public: bytes
    secret: bytes = dataclasses.field(repr=False)
    path: str


def _is_z85_key(value: bytes | None) -> bool:
    return (
        value is not None
        and len(value) == _Z85_KEY_LENGTH
        and all(byte in _Z85_ALPHABET for byte in value)
    )


def check_server_key(value: object) -> str:
    """``value`` if it is a Z85 CURVE public key (40 characters), else `SecurityError`."""
    if not isinstance(value, str) or not _is_z85_key(value.encode("ascii", "replace")):
        msg = f"not a CURVE public key (40 Z85 characters): {value!r}"
        raise SecurityError(msg)
    return value


def _writable_problem(info: os.stat_result, path: Path | str) -> str | None:
    return owner_or_mode_problem(
        info, forbidden=0o022, meaning="writable by group or others", fix=f"chmod go-w {path}"
    )


def _os_refusal(what: str, path: Path | str, exc: OSError) -> SecurityError:
    """The `SecurityError` naming ``path`` for an ``OSError`` met reading it."""
    if isinstance(exc, FileNotFoundError):
        problem = "does not exist"
    elif isinstance(exc, PermissionError):
        problem = "is unreadable: permission denied"
    elif exc.errno == errno.ELOOP:
        problem = "is a symbolic link: refused (name the real file)"
    elif exc.errno == errno.EISDIR:
        problem = "is not a regular file"
    else:
        problem = f"cannot be read: {exc.strerror or exc}"
    return SecurityError(f"{what} {str(path)!r} {problem}")


def check_key_directory(directory: Path, what: str) -> None:
    """Refuse a key directory an attacker could change; any thread.

    Raises `SecurityError` naming ``directory`` when it does not exist, is a
    symbolic link, is not a directory, is owned by another user (root
    excepted) or is writable by group or others.
    """
    try:
        info = directory.lstat()
    except OSError as exc:
        raise _os_refusal(what, directory, exc) from None
    if stat.S_ISLNK(info.st_mode):
        problem: str | None = "is a symbolic link: refused (name the real directory)"
    elif not stat.S_ISDIR(info.st_mode):
        problem = "is not a directory"
    else:
        problem = _writable_problem(info, directory)
    if problem is not None:
        msg = f"{what} {str(directory)!r} {problem}"
        raise SecurityError(msg)


def _open_key_file(path: Path, what: str) -> int:
    try:
        # O_NOFOLLOW: a symbolic link planted as a key file is refused, not followed;
        # O_NONBLOCK: a FIFO does not hang the open (fstat then refuses it).
        return os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise _os_refusal(what, path, exc) from None


def _file_problem(info: os.stat_result, path: Path, *, secret: bool) -> str | None:
    if not stat.S_ISREG(info.st_mode):
        return "is not a regular file"
    if secret:
        problem = owner_or_mode_problem(
            info,
            forbidden=0o077,
            meaning="readable or writable by group or others",
            fix=f"chmod 600 {path}",
        )
    else:
        problem = _writable_problem(info, path)
    if problem is not None:
        return problem
    if info.st_size > _MAX_KEY_FILE:
        return f"is malformed: larger than {_MAX_KEY_FILE} bytes"
    return None


def _parse_certificate(text: bytes) -> tuple[bytes | None, bytes | None]:
    # The two lines of a zmq.auth certificate (ZPL) that matter; comments skipped.
    public = secret = None
    for raw in text.splitlines():
        line = raw.strip()
        name, sep, value = line.partition(b"=")
        if line.startswith(b"#") or not sep:
            continue
        if name.strip() == b"public-key":
            public = value.strip(b" \t'\"")
        elif name.strip() == b"secret-key":
            secret = value.strip(b" \t'\"")
    return public, secret


def _read_key_file(path: Path, what: str, *, secret: bool) -> tuple[bytes, bytes | None]:
    """Parse a ``zmq.auth`` certificate; `SecurityError` naming ``path`` and the problem.

    The checks run on the opened file (``fstat``), so the file read is the
    file checked.
    """
    fd = _open_key_file(path, what)
    try:
        info = os.fstat(fd)
        if (problem := _file_problem(info, path, secret=secret)) is not None:
            msg = f"{what} {str(path)!r} {problem}"
            raise SecurityError(msg)
        try:
            text = os.read(fd, _MAX_KEY_FILE + 1)
        except OSError as exc:
            raise _os_refusal(what, path, exc) from None
    finally:
        os.close(fd)
    public, secret_key = _parse_certificate(text)
    if public is None:
        msg = f"{what} {str(path)!r} is malformed: no public-key line"
        raise SecurityError(msg)
    _check_z85(public, what, path, "public")
    return public, secret_key


def _check_z85(value: bytes, what: str, path: Path | str, which: str) -> None:
    if not _is_z85_key(value):
        msg = f"{what} {str(path)!r} is malformed: the {which} key is not 40 Z85 characters"
        raise SecurityError(msg)


def load_key_pair(path: str) -> KeyPair:
    """Read a key pair from the certificate file ``path``; any thread.

    Raises `SecurityError` naming the file when it is missing, a symbolic
    link, not a regular file, unreadable, owned by another user (root
    excepted), readable by group or others (mode & 0o077), in a directory
    that group or others may write or another user owns, or malformed (no
    public or no secret key, keys that are not 40 Z85 characters).
    """
    what = "CURVE secret key file"
    file = Path(path)
    public, secret = _read_key_file(file, what, secret=True)
    check_key_directory(file.absolute().parent, f"the directory of {what} {path!r},")
    if secret is None:
        msg = f"{what} {path!r} is malformed: it holds no secret-key (a public .key file?)"
        raise SecurityError(msg)
    _check_z85(secret, what, path, "secret")
    return KeyPair(public, secret, path)


def load_public_key_files(directory: str, what: str) -> dict[str, bytes]:
    """The public key of every ``NAME.key`` file in ``directory``, by NAME; any thread.

    Raises `SecurityError` naming the directory or file (``what`` says which
    directory) when the directory is missing, unreadable or fails
    `check_key_directory`, or when a key file is a symbolic link, owned by
    another user, writable by group or others, or malformed.
    """
    folder = Path(directory)
    check_key_directory(folder, what)
    try:
        names = sorted(entry.name for entry in os.scandir(folder) if entry.name.endswith(".key"))
    except OSError as exc:
        raise _os_refusal(what, directory, exc) from None
    return {
        name.removesuffix(".key"): _read_key_file(
            folder / name, "CURVE public key file", secret=False
        )[0]
        for name in names
    }


def load_public_keys(directory: str) -> frozenset[bytes]:
    """The public keys of every ``*.key`` file in ``directory`` (the allow-list); any thread.

    Raises `SecurityError` as `load_public_key_files` does, and when the
    directory holds no ``*.key`` file.
    """
    what = "CURVE public keys directory"
    keys = load_public_key_files(directory, what)
    if not keys:
        msg = f"{what} {directory!r} holds no *.key file: no client could connect"
        raise SecurityError(msg)
    return frozenset(keys.values())


def load_server_pins(directory: str) -> ServerKeyPins:
    """The trusted server keys of ``directory`` (``curve_server_keys_dir``); any thread.

    Raises `SecurityError` as `load_public_key_files` does, and when the
    directory holds no ``*.key`` file (no server could be trusted).
    """
    what = "CURVE server keys directory (curve_server_keys_dir)"
    keys = load_public_key_files(directory, what)
    if not keys:
        msg = f"{what} {directory!r} holds no *.key file: no server would be trusted"
        raise SecurityError(msg)
    return ServerKeyPins({name: key.decode("ascii") for name, key in keys.items()}, directory)


_KEY_NAME: Final = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,100}")


def write_key_pair(directory: str, name: str) -> tuple[Path, Path]:
    """Write a new key pair as ``NAME.key`` (public, mode 0644) and ``NAME.key_secret`` (0600).

    ``directory`` is created (mode 0700) if missing. The files are written in
    a private staging directory inside it and linked into place, so the secret
    key is never readable by others and existing files are never overwritten.
    Any thread. Returns (public file, secret file).

    Raises `ConfigurationError` naming the path for a bad name, a
    ``directory`` that is not a directory, cannot be created or is not
    writable, or a key file of that name that already exists; ``OSError``
    for other failures to write.
    """
    if not _KEY_NAME.fullmatch(name):
        msg = (
            f"bad key name {name!r}: letters, digits, '_', '.' and '-' only, not starting with '.'"
        )
        raise ConfigurationError(msg)
    folder = private_directory(directory, "key directory")
    public = folder / f"{name}.key"
    secret = folder / f"{name}.key_secret"
    for path in (public, secret):
        if path.exists() or path.is_symlink():
            msg = f"{str(path)!r} already exists: not overwritten (choose another name)"
            raise ConfigurationError(msg)
    staging = Path(tempfile.mkdtemp(prefix=".keygen-", dir=folder))
    try:
        staged_public, staged_secret = map(Path, zmq.auth.create_certificates(staging, name))
        staged_secret.chmod(0o600)
        staged_public.chmod(0o644)
        try:
            os.link(staged_secret, secret)
            os.link(staged_public, public)
        except FileExistsError:
            with contextlib.suppress(OSError):
                if secret.samefile(staged_secret):
                    secret.unlink()
            msg = f"a key file named {name!r} appeared in {directory!r} meanwhile: not overwritten"
            raise ConfigurationError(msg) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return public, secret
