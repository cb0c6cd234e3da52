"""CurveZMQ for network sockets: key files, the process's ZAP authenticator, socket set-up.

Two options turn it on (`zmqactors.options`): ``curve_secret_key_file``, this
host's key pair (a ``zmq.auth`` certificate file with its secret key), and
``curve_public_keys_dir``, the allow-list of the clients a server lets in (the
``*.key`` files ``zmq.auth`` reads). A server registers its public key with its
address in the matchmaker; a client takes the key from the route, so it needs
only its own key pair.

Everything here fails closed, raising `SecurityError` with the file and the
problem: a missing, unreadable or malformed key file, a secret key that group
or others may read, a server with only half of the configuration, a ZAP
authenticator that is not running. Inproc sockets are never encrypted: they
do not leave the process.

ZAP: one ``zmq.auth.ThreadAuthenticator`` per process context, started by the
first CURVE server and stopped before the context terminates at exit. It owns
its ZAP socket in its own thread. Each allow-list directory is a ZAP domain,
so transports of one process with different allow-lists do not mix. After
``fork()`` the child forgets the parent's authenticator (never stopping it:
its sockets are the parent's) and starts its own with its first CURVE server.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import re
import shutil
import stat
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Final

import structlog
import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator

from zmqactors._addresses import peer_address
from zmqactors._paths import private_directory
from zmqactors.errors import ConfigurationError, SecurityError
from zmqactors.net.context import before_terminate, get_context, on_fork_child

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine
    from typing import Any

    from zmqactors.options import Settings

__all__ = [
    "HANDSHAKE_FAILURES",
    "KeyPair",
    "ServerCurve",
    "authenticator_running",
    "check_server_key",
    "client_key_pair",
    "configure_client",
    "configure_server",
    "load_key_pair",
    "load_public_keys",
    "prepare_server",
    "require_authenticator",
    "write_key_pair",
]

_log = structlog.get_logger("zmqactors.security")

# A CURVE key is 32 bytes, 40 characters in Z85.
_Z85_KEY_LENGTH: Final = 40
_Z85_ALPHABET: Final = frozenset(
    b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#"
)
# Certificate files are a few hundred bytes; refuse to read anything much larger.
_MAX_KEY_FILE: Final = 64 * 1024
# The handshake failures a server counts as rejected clients: a key not on
# the allow-list (AUTH, from ZAP), a peer without CURVE or with a broken one
# (PROTOCOL: mechanism mismatch, bad commands), and the rest (NO_DETAIL).
HANDSHAKE_FAILURES: Final = (
    zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
    | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
    | zmq.EVENT_HANDSHAKE_FAILED_AUTH
)
_START_TIMEOUT: Final = 10.0


@dataclasses.dataclass(frozen=True, slots=True)
class KeyPair:
    """A CURVE key pair read from ``path``: Z85 text as bytes (40 each); the secret is not shown."""

    public: bytes
    secret: bytes = dataclasses.field(repr=False)
    path: str


@dataclasses.dataclass(frozen=True, slots=True)
class ServerCurve:
    """What a server socket needs: its key pair and the ZAP domain of its allow-list."""

    keys: KeyPair
    domain: str

    @property
    def public_key(self) -> str:
        """The public key a server advertises in the matchmaker (Z85 text)."""
        return self.keys.public.decode("ascii")


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


def client_key_pair(settings: Settings) -> KeyPair | None:
    """Return the key pair for client sockets of ``settings``, or None without CURVE. Any thread.

    Raises `SecurityError` as `load_key_pair` does.
    """
    path = settings.curve_secret_key_file
    return None if path is None else load_key_pair(path)


def prepare_server(settings: Settings) -> ServerCurve | None:
    """Check a server's CURVE configuration and start the authenticator; None without CURVE.

    Reads the key pair and the allow-list afresh (a server started later sees
    keys added meanwhile) and gives the allow-list to the process's
    authenticator, starting it if needed. Any thread.

    Raises `SecurityError` when only one of the two options is set, for the
    file problems of `load_key_pair` and `load_public_keys`, and when the
    authenticator cannot be started or has stopped.
    """
    secret_file = settings.curve_secret_key_file
    keys_dir = settings.curve_public_keys_dir
    if secret_file is None and keys_dir is None:
        return None
    if secret_file is None:
        msg = (
            f"curve_public_keys_dir is set ({keys_dir!r}) but curve_secret_key_file is not: "
            "a CURVE server needs its own key pair"
        )
        raise SecurityError(msg)
    if keys_dir is None:
        msg = (
            f"curve_secret_key_file is set ({secret_file!r}) but curve_public_keys_dir is not: "
            "a CURVE server needs the allow-list of its clients' public keys"
        )
        raise SecurityError(msg)
    keys = load_key_pair(secret_file)
    allowed = load_public_keys(keys_dir)
    domain = _domain_of(keys_dir)
    _process.allow(domain, allowed)
    return ServerCurve(keys, domain)


def _domain_of(directory: str) -> str:
    # One ZAP domain per allow-list; short and printable, whatever the path.
    digest = hashlib.sha256(os.fsencode(Path(directory).absolute())).hexdigest()[:16]
    return f"zmqactors-{digest}"


def configure_server(sock: zmq.Socket[bytes], curve: ServerCurve) -> None:
    """Make ``sock`` a CURVE server checked by ZAP against ``curve``'s allow-list.

    Call before binding, in the thread that owns ``sock``.
    """
    sock.setsockopt(zmq.CURVE_SERVER, 1)
    sock.setsockopt(zmq.CURVE_PUBLICKEY, curve.keys.public)
    sock.setsockopt(zmq.CURVE_SECRETKEY, curve.keys.secret)
    sock.setsockopt(zmq.ZAP_DOMAIN, curve.domain.encode("ascii"))


def configure_client(sock: zmq.Socket[bytes], keys: KeyPair, server_key: str) -> None:
    """Make ``sock`` a CURVE client of the server whose public key is ``server_key``.

    Call before connecting, in the thread that owns ``sock``. Raises
    `SecurityError` if ``server_key`` is not a Z85 public key.
    """
    sock.setsockopt(zmq.CURVE_SERVERKEY, check_server_key(server_key).encode("ascii"))
    sock.setsockopt(zmq.CURVE_PUBLICKEY, keys.public)
    sock.setsockopt(zmq.CURVE_SECRETKEY, keys.secret)


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


def authenticator_running() -> bool:
    """Whether this process's ZAP authenticator is running. Any thread."""
    return _process.running()


def require_authenticator() -> None:
    """Raise `SecurityError` unless this process's ZAP authenticator is running.

    Without one, libzmq lets every CURVE client in: a server checks this
    right before it binds. Any thread.
    """
    if not _process.running():
        msg = (
            "the ZAP authenticator of this process is not running: refusing to bind "
            "a CURVE server that would let every client in"
        )
        raise SecurityError(msg)


class _AllowList:
    """The credentials provider of one ZAP domain (called in the authenticator's thread).

    ``peer`` says the address of the client whose key is being checked.
    """

    def __init__(self, domain: str, keys: frozenset[bytes], peer: Callable[[], str]) -> None:
        self.domain = domain
        self.keys = keys
        self._peer = peer

    def callback(self, domain: str, key: bytes) -> bool:
        allowed = key in self.keys
        if not allowed:
            _log.warning(
                "CURVE client key not on the allow-list",
                domain=domain,
                key=key.decode(),
                peer=self._peer(),
            )
        return allowed


class _Authenticator(ThreadAuthenticator):
    """pyzmq's thread authenticator, stopped only when we say so.

    ``ThreadAuthenticator.__del__`` stops the thread and joins it without a
    bound; run by the garbage collector at interpreter exit, or in a forked
    child on the parent's sockets, that could hang. `_ProcessAuthenticator`
    stops it explicitly instead.
    """

    # The address of the client of the ZAP request being handled, for the log
    # of a refusal; only the authenticator's thread reads and writes it.
    peer = ""

    def __del__(self) -> None:
        """Do nothing (see the class docstring)."""

    def handle_zap_message(self, msg: list[bytes]) -> Coroutine[Any, Any, None]:
        """Remember the client's address, then let pyzmq answer (authenticator thread)."""
        # [version, request id, domain, address, ...]: ZAP reports an IPv4
        # client of a socket with ZMQ_IPV6 as IPv4-mapped; shown as IPv4.
        self.peer = peer_address(msg[3].decode("ascii", "replace")) if len(msg) > 3 else ""  # noqa: PLR2004 - the ZAP frames
        return super().handle_zap_message(msg)


class _ProcessAuthenticator:
    """The one authenticator of this process's context. Any thread; a lock orders changes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pid = 0
        self._authenticator: _Authenticator | None = None
        self._inherited: list[_Authenticator] = []

    def running(self) -> bool:
        auth = self._authenticator
        return auth is not None and self._pid == os.getpid() and auth.is_alive()

    def allow(self, domain: str, keys: frozenset[bytes]) -> None:
        """Start the authenticator if needed and set the allow-list of ``domain``."""
        with self._lock:
            auth = self._authenticator
            if auth is None or self._pid != os.getpid():
                auth = self._start()
            if not auth.is_alive():
                msg = "the ZAP authenticator of this process has stopped: refusing to serve CURVE"
                raise SecurityError(msg)
            # A dict store: the authenticator thread sees the old or the new list.
            auth.configure_curve_callback(domain, _AllowList(domain, keys, lambda: auth.peer))

    def _start(self) -> _Authenticator:
        auth = _Authenticator(get_context())
        try:
            auth.start()
        except (zmq.ZMQError, RuntimeError) as exc:
            # Another ZAP handler holds inproc://zeromq.zap.01 in this context,
            # or the thread did not come up: nobody we trust checks keys.
            self._forget(auth)
            msg = f"cannot start the ZAP authenticator: {exc}"
            raise SecurityError(msg) from None
        self._authenticator = auth
        self._pid = os.getpid()
        _log.debug("ZAP authenticator started")
        return auth

    def _forget(self, auth: _Authenticator) -> None:
        # Its sockets' finalisers must not run on sockets that are not ours
        # (the parent's, after a fork): keep it referenced.
        self._inherited.append(auth)

    def stop(self) -> None:
        """Stop this process's authenticator (before the context terminates at exit)."""
        with self._lock:
            auth = self._authenticator
            if auth is None or self._pid != os.getpid():
                return
            auth.stop()

    def after_fork_in_child(self) -> None:
        self._lock = threading.Lock()
        if self._authenticator is not None:
            self._forget(self._authenticator)
        self._authenticator = None
        self._pid = 0


_process = _ProcessAuthenticator()
on_fork_child(_process.after_fork_in_child)
before_terminate(_process.stop)
