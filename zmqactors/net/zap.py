"""The process's ZAP authenticator: the thread that checks CURVE clients against allow-lists.

One ``zmq.auth.ThreadAuthenticator`` per process context, started by the
first CURVE server and stopped before the context terminates at exit. It owns
its ZAP socket in its own thread. Each allow-list directory is a ZAP domain,
so transports of one process with different allow-lists do not mix. After
``fork()`` the child forgets the parent's authenticator (never stopping it:
its sockets are the parent's) and starts its own with its first CURVE server.
"""

from __future__ import annotations

import os
import threading
import time
from typing import TYPE_CHECKING

import structlog
import zmq
from zmq.auth.thread import ThreadAuthenticator

from zmqactors._addresses import peer_address
from zmqactors.core.refusals import OTHER_PEERS, REFUSAL_LOG_INTERVAL, RefusalLog
from zmqactors.errors import SecurityError
from zmqactors.net.context import before_terminate, get_context, on_fork_child

if TYPE_CHECKING:
    from collections.abc import Coroutine
    from typing import Any

__all__ = ["allow", "authenticator_running", "require_authenticator"]

_log = structlog.get_logger("zmqactors.security")


def allow(domain: str, keys: frozenset[bytes]) -> None:
    """Let the clients with ``keys`` into ZAP ``domain``, starting the authenticator if needed.

    One that has stopped is started again with every allow-list it had. Any
    thread. Raises `SecurityError` when the authenticator cannot be started.
    """
    _process.allow(domain, keys)


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

    ``auth`` is the authenticator that calls it: it knows the address of the
    client whose key is being checked, and aggregates the refusal logs.
    """

    def __init__(self, domain: str, keys: frozenset[bytes], auth: _Authenticator) -> None:
        self.domain = domain
        self.keys = keys
        self._auth = auth

    def callback(self, domain: str, key: bytes) -> bool:
        allowed = key in self.keys
        if not allowed:
            self._auth.log_refusal(domain, key)
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

    def __init__(self, context: zmq.Context[zmq.Socket[bytes]]) -> None:
        """Set up the authenticator of ``context`` (caller thread; started later)."""
        super().__init__(context)
        # Refusals logged one line per client address per interval; authenticator thread only.
        self.refusals = RefusalLog(REFUSAL_LOG_INTERVAL)

    def log_refusal(self, domain: str, key: bytes) -> None:
        """Count a refused key and log it if `RefusalLog` says so (authenticator thread)."""
        # By allow-list and address: one server's refusals do not hide another's.
        line = self.refusals.refused(f"{domain} {self.peer}", time.monotonic())
        if line is not None:
            peer = self.peer if line[0] != OTHER_PEERS else OTHER_PEERS
            count = line[1]
            _log.warning(
                "CURVE client key not on the allow-list",
                domain=domain,
                key=key.decode("ascii", "replace"),
                peer=peer,
                count=count,
                interval=REFUSAL_LOG_INTERVAL,
            )

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
        # Every allow-list given to this process's authenticator, by ZAP domain:
        # one started again after a stop gets them all back.
        self._domains: dict[str, frozenset[bytes]] = {}

    def running(self) -> bool:
        auth = self._authenticator
        return auth is not None and self._pid == os.getpid() and auth.is_alive()

    def allow(self, domain: str, keys: frozenset[bytes]) -> None:
        """Start the authenticator if needed and set the allow-list of ``domain``.

        One that has stopped is started again with every allow-list it had:
        meanwhile libzmq refused every CURVE client (``ZAP_ENFORCE_DOMAIN``).
        """
        with self._lock:
            auth = self._authenticator
            if auth is None or self._pid != os.getpid():
                auth = self._start()
            elif not auth.is_alive():
                _log.warning("ZAP authenticator had stopped: starting it again")
                self._forget(auth)
                auth = self._start()
                for known, known_keys in self._domains.items():
                    auth.configure_curve_callback(known, _AllowList(known, known_keys, auth))
            # A dict store: the authenticator thread sees the old or the new list.
            self._domains[domain] = keys
            auth.configure_curve_callback(domain, _AllowList(domain, keys, auth))

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
        self._domains = {}


_process = _ProcessAuthenticator()
on_fork_child(_process.after_fork_in_child)
before_terminate(_process.stop)
