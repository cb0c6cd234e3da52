"""CurveZMQ for network sockets: a server's and a client's configuration, put on sockets.

Two options turn it on (`zmqactors.options`): ``curve_secret_key_file``, this
host's key pair (a ``zmq.auth`` certificate file with its secret key), and
``curve_public_keys_dir``, the allow-list of the clients a server lets in (the
``*.key`` files ``zmq.auth`` reads). A server registers its public key with its
address in the matchmaker; a client takes the key from the route, so it needs
only its own key pair.

Everything here fails closed, raising `SecurityError` with the file and the
problem (`zmqactors.net.keys` reads the files; `zmqactors.net.zap` runs the
authenticator): a server with only half of the configuration, a ZAP
authenticator that is not running. Inproc sockets are never encrypted: they
do not leave the process.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Final

import zmq

from zmqactors.errors import SecurityError
from zmqactors.net import zap
from zmqactors.net.keys import (
    KeyPair,
    check_server_key,
    load_key_pair,
    load_public_keys,
    load_server_pins,
)

if TYPE_CHECKING:
    from zmqactors.core.pins import ServerKeyPins
    from zmqactors.options import Settings

__all__ = [
    "HANDSHAKE_FAILURES",
    "ServerCurve",
    "client_key_pair",
    "client_pins",
    "configure_client",
    "configure_server",
    "prepare_server",
]

# The handshake failures a server counts as rejected clients: a key not on
# the allow-list (AUTH, from ZAP), a peer without CURVE or with a broken one
# (PROTOCOL: mechanism mismatch, bad commands), and the rest (NO_DETAIL).
HANDSHAKE_FAILURES: Final = (
    zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
    | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
    | zmq.EVENT_HANDSHAKE_FAILED_AUTH
)


@dataclasses.dataclass(frozen=True, slots=True)
class ServerCurve:
    """What a server socket needs: its key pair and the ZAP domain of its allow-list."""

    keys: KeyPair
    domain: str

    @property
    def public_key(self) -> str:
        """The public key a server advertises in the matchmaker (Z85 text)."""
        return self.keys.public.decode("ascii")


def client_key_pair(settings: Settings) -> KeyPair | None:
    """Return the key pair for client sockets of ``settings``, or None without CURVE. Any thread.

    Raises `SecurityError` as `load_key_pair` does.
    """
    path = settings.curve_secret_key_file
    return None if path is None else load_key_pair(path)


def client_pins(settings: Settings) -> ServerKeyPins | None:
    """The server keys clients of ``settings`` trust, or None when any registered key is.

    Any thread. Raises `SecurityError` when ``curve_server_keys_dir`` is set
    without ``curve_secret_key_file`` (pinned keys mean nothing without
    encryption), and for the problems of `load_server_pins`.
    """
    directory = settings.curve_server_keys_dir
    if directory is None:
        return None
    if settings.curve_secret_key_file is None:
        msg = (
            f"curve_server_keys_dir is set ({directory!r}) but curve_secret_key_file is not: "
            "pinned server keys need CURVE (this client's own key pair)"
        )
        raise SecurityError(msg)
    return load_server_pins(directory)


def prepare_server(settings: Settings) -> ServerCurve | None:
    """Check a server's CURVE configuration and start the authenticator; None without CURVE.

    Reads the key pair and the allow-list afresh (a server started later sees
    keys added meanwhile) and gives the allow-list to the process's
    authenticator, starting it if needed (again, if it has stopped). Any thread.

    Raises `SecurityError` when only one of the two options is set, for the
    file problems of `load_key_pair` and `load_public_keys`, and when the
    authenticator cannot be started.
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
    zap.allow(domain, allowed)
    return ServerCurve(keys, domain)


def _domain_of(directory: str) -> str:
    # One ZAP domain per allow-list; short and printable, whatever the path.
    digest = hashlib.sha256(os.fsencode(Path(directory).absolute())).hexdigest()[:16]
    return f"zmqactors-{digest}"


def configure_server(sock: zmq.Socket[bytes], curve: ServerCurve) -> None:
    """Make ``sock`` a CURVE server checked by ZAP against ``curve``'s allow-list.

    ZAP is enforced: while no authenticator answers, every client is refused.

    Call before binding, in the thread that owns ``sock``.
    """
    sock.setsockopt(zmq.CURVE_SERVER, 1)
    sock.setsockopt(zmq.CURVE_PUBLICKEY, curve.keys.public)
    sock.setsockopt(zmq.CURVE_SECRETKEY, curve.keys.secret)
    sock.setsockopt(zmq.ZAP_DOMAIN, curve.domain.encode("ascii"))
    # Fail closed: without it libzmq lets every CURVE client in while no ZAP
    # handler runs (the authenticator stopped or died after the bind).
    sock.setsockopt(zmq.ZAP_ENFORCE_DOMAIN, 1)


def configure_client(sock: zmq.Socket[bytes], keys: KeyPair, server_key: str) -> None:
    """Make ``sock`` a CURVE client of the server whose public key is ``server_key``.

    Call before connecting, in the thread that owns ``sock``. Raises
    `SecurityError` if ``server_key`` is not a Z85 public key.
    """
    sock.setsockopt(zmq.CURVE_SERVERKEY, check_server_key(server_key).encode("ascii"))
    sock.setsockopt(zmq.CURVE_PUBLICKEY, keys.public)
    sock.setsockopt(zmq.CURVE_SECRETKEY, keys.secret)
