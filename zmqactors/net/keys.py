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
import os
import re
import shutil
import stat
import tempfile
from pathlib import Path
from typing import Final

import zmq.auth

from zmqactors._paths import private_directory
from zmqactors.errors import ConfigurationError, SecurityError

__all__ = [
    "KeyPair",
    "check_server_key",
    "load_key_pair",
    "load_public_keys",
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


def _read_key_file(path: Path, what: str) -> tuple[bytes, bytes | None]:
    """Parse a ``zmq.auth`` certificate; `SecurityError` naming ``path`` and the problem."""
    try:
        info = path.stat()
    except FileNotFoundError:
        msg = f"{what} {str(path)!r} does not exist"
        raise SecurityError(msg) from None
    except OSError as exc:
        msg = f"{what} {str(path)!r} cannot be read: {exc.strerror or exc}"
        raise SecurityError(msg) from None
    if not stat.S_ISREG(info.st_mode):
        msg = f"{what} {str(path)!r} is not a regular file"
        raise SecurityError(msg)
    if info.st_size > _MAX_KEY_FILE:
        msg = f"{what} {str(path)!r} is malformed: larger than {_MAX_KEY_FILE} bytes"
        raise SecurityError(msg)
    try:
        with path.open("rb"):
            pass
        public, secret = zmq.auth.load_certificate(path)
    except PermissionError:
        msg = f"{what} {str(path)!r} is unreadable: permission denied"
        raise SecurityError(msg) from None
    except OSError as exc:
        msg = f"{what} {str(path)!r} cannot be read: {exc.strerror or exc}"
        raise SecurityError(msg) from None
    except ValueError:
        msg = f"{what} {str(path)!r} is malformed: no public-key line"
        raise SecurityError(msg) from None
    if not _is_z85_key(public):
        msg = f"{what} {str(path)!r} is malformed: the public key is not 40 Z85 characters"
        raise SecurityError(msg)
    return public, secret


def load_key_pair(path: str) -> KeyPair:
    """Read a key pair from the certificate file ``path``; any thread.

    Raises `SecurityError` naming the file when it is missing, not a regular
    file, unreadable, readable by group or others (mode & 0o077), or
    malformed (no public or no secret key, keys that are not 40 Z85 characters).
    """
    what = "CURVE secret key file"
    file = Path(path)
    public, secret = _read_key_file(file, what)
    mode = file.stat().st_mode
    if mode & 0o077:
        msg = (
            f"{what} {path!r} is readable or writable by group or others "
            f"(mode {stat.S_IMODE(mode):04o}): run 'chmod 600 {path}'"
        )
        raise SecurityError(msg)
    if secret is None:
        msg = f"{what} {path!r} is malformed: it holds no secret-key (a public .key file?)"
        raise SecurityError(msg)
    if not _is_z85_key(secret):
        msg = f"{what} {path!r} is malformed: the secret key is not 40 Z85 characters"
        raise SecurityError(msg)
    return KeyPair(public, secret, path)


def load_public_keys(directory: str) -> frozenset[bytes]:
    """The public keys of every ``*.key`` file in ``directory`` (the allow-list); any thread.

    Raises `SecurityError` naming the directory or file when the directory is
    missing, not a directory or unreadable, when it holds no ``*.key`` file,
    or when one of them is malformed.
    """
    what = "CURVE public keys directory"
    folder = Path(directory)
    try:
        names = sorted(entry.name for entry in os.scandir(folder) if entry.name.endswith(".key"))
    except FileNotFoundError:
        msg = f"{what} {directory!r} does not exist"
        raise SecurityError(msg) from None
    except NotADirectoryError:
        msg = f"{what} {directory!r} is not a directory"
        raise SecurityError(msg) from None
    except PermissionError:
        msg = f"{what} {directory!r} is unreadable: permission denied"
        raise SecurityError(msg) from None
    except OSError as exc:
        msg = f"{what} {directory!r} cannot be read: {exc.strerror or exc}"
        raise SecurityError(msg) from None
    if not names:
        msg = f"{what} {directory!r} holds no *.key file: no client could connect"
        raise SecurityError(msg)
    return frozenset(_read_key_file(folder / name, "CURVE public key file")[0] for name in names)


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
