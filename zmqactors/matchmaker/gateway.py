"""A small client of etcd's v3 JSON gateway (``/v3/...``), on the standard library.

Why not `etcd3gw` (the client OpenStack maintains): it imports eventlet
whenever eventlet is installed (which every OpenStack host has), and this
project never imports eventlet; it has neither user/password authentication
nor fail-over between members, and its watch thread ends silently when the
member it reads from dies. What the matchmaker needs is six JSON calls over
HTTP(S), so they are written here on `http.client`, with no dependency.

`Gateway` holds one keep-alive connection to one member at a time and moves
to the next member when a request cannot be sent or answered (connection
refused or reset, a timeout, a 5xx answer); a request fails only when every
member failed it in turn. With a user name it authenticates first and again
when etcd says the token expired. `watch_lines` opens a watch stream on its
own connection (the caller's thread reads it). Keys and values are bytes;
the gateway encodes them in base64 as etcd's JSON mapping asks.

Errors: `EtcdUnavailable` (no member answered; an ``OSError``, so callers
treat it as the store being unreachable) and `EtcdError` (a member answered
with an error: a refused password, a lease that is gone).
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import socket
import ssl
import threading
from typing import TYPE_CHECKING, Any, Final

import structlog

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

__all__ = ["EtcdError", "EtcdUnavailable", "Gateway", "TLSConfig", "b64", "unb64"]

_log = structlog.get_logger(__name__)

_API: Final = "/v3/"
_HTTP_OK: Final = 200
_HTTP_UNAUTHORIZED: Final = 401
_HTTP_SERVER_ERROR: Final = 500
# A gRPC code the gateway puts in the body: the token is not (or no longer) valid.
_GRPC_UNAUTHENTICATED: Final = 16
# Answers larger than this are not a matchmaker's: refuse them rather than
# hold them in memory (1,000 servers' routes are about 200 KiB).
_MAX_ANSWER: Final = 64 << 20


class EtcdUnavailable(OSError):  # noqa: N818 - reads like the redis-py errors it stands beside
    """No etcd member could be reached or answered in time."""


class EtcdError(Exception):
    """An etcd member answered with an error (``code`` is the gRPC code, 0 if none)."""

    def __init__(self, message: str, code: int = 0) -> None:
        """Keep the gRPC ``code`` beside the message."""
        super().__init__(message)
        self.code = code


class TLSConfig:
    """How to speak HTTPS to etcd: a verifying context built once from the option files."""

    def __init__(self, ca_file: str | None, cert_file: str | None, key_file: str | None) -> None:
        """Build the context; raises ``OSError``/``ssl.SSLError`` for an unreadable file."""
        # Verification and host name checks on: the system's authorities unless
        # a CA file is named.
        self.context = ssl.create_default_context(cafile=ca_file)
        if cert_file is not None:
            self.context.load_cert_chain(cert_file, key_file)


def b64(data: bytes) -> str:
    """``data`` as the gateway's JSON carries bytes."""
    return base64.b64encode(data).decode("ascii")


def unb64(text: object) -> bytes:
    """The bytes of a gateway JSON field (an absent field is empty)."""
    if not isinstance(text, str):
        return b""
    return base64.b64decode(text)


class Gateway:
    """Requests to the members of one etcd cluster, one member at a time. Thread-safe."""

    def __init__(
        self,
        endpoints: Sequence[tuple[str, int]],
        *,
        tls: TLSConfig | None = None,
        username: str | None = None,
        password: str | None = None,
        timeout: float = 2.0,
    ) -> None:
        """Prepare requests to ``endpoints`` (host, port); nothing connects here."""
        if not endpoints:
            msg = "the etcd gateway needs at least one endpoint"
            raise ValueError(msg)
        self._endpoints = tuple(endpoints)
        self._tls = tls
        self._username = username
        self._password = password
        self._timeout = timeout
        self._lock = threading.Lock()
        self._current = 0
        self._conn: http.client.HTTPConnection | None = None
        self._token: str | None = None
        self._watch_conn: http.client.HTTPConnection | None = None
        self._closed = False

    @property
    def endpoints(self) -> tuple[tuple[str, int], ...]:
        """The members, in the order they are tried."""
        return self._endpoints

    def call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST ``body`` to ``/v3/<path>`` on a live member; its JSON answer. Any thread.

        Tries each member once, starting with the one that answered last.
        Raises `EtcdUnavailable` when none answers, `EtcdError` for an error answer.
        """
        with self._lock:
            failures: list[str] = []
            for _ in self._endpoints:
                try:
                    return self._call_current(path, body)
                except (OSError, http.client.HTTPException) as exc:
                    failures.append(f"{self._describe(self._current)}: {exc}")
                    self._next_member()
            msg = f"no etcd member answered {path}: {'; '.join(failures)}"
            raise EtcdUnavailable(msg)

    def watch_lines(self, body: dict[str, Any], read_timeout: float) -> Iterator[dict[str, Any]]:
        """Open a watch on one member and yield each JSON message it streams. Caller's thread.

        Each member is tried once; the stream ends with `EtcdUnavailable` when
        its member goes away or says nothing for ``read_timeout`` seconds.
        """
        failures: list[str] = []
        for _ in self._endpoints:
            with self._lock:
                if self._closed:
                    return
                if self._username is not None and self._token is None:
                    try:
                        self._authenticate()
                    except (OSError, http.client.HTTPException) as exc:
                        failures.append(f"{self._describe(self._current)}: {exc}")
                        self._next_member()
                        continue
                index = self._current
                headers = self._headers()
                # The request timeout until the watch is created: a member cut
                # off must not hold this thread for read_timeout.
                conn = self._connect(index, self._timeout)
                self._watch_conn = conn
            try:
                conn.request("POST", _API + "watch", json.dumps(body), headers)
                response = conn.getresponse()
                if conn.sock is not None:
                    conn.sock.settimeout(read_timeout)
                if response.status != _HTTP_OK:
                    failures.append(f"{self._describe(index)}: HTTP {response.status}")
                    conn.close()
                    with self._lock:
                        self._next_member(index)
                    continue
            except (OSError, http.client.HTTPException) as exc:
                failures.append(f"{self._describe(index)}: {exc}")
                conn.close()
                with self._lock:
                    self._next_member(index)
                continue
            # A stream that ends (its member died, or said nothing for
            # read_timeout) raises: the caller opens another, and the
            # connection attempt moves on from a dead member.
            yield from _stream(conn, response, self._describe(index))
            return
        msg = f"no etcd member accepted a watch: {'; '.join(failures)}"
        raise EtcdUnavailable(msg)

    def close(self) -> None:
        """Close the connections and end a watch being read; any thread; idempotent.

        Requests after it connect again; `watch_lines` returns at once.
        """
        with self._lock:
            self._closed = True
            if self._conn is not None:
                self._conn.close()
                self._conn = None
            watch = self._watch_conn
            self._watch_conn = None
        if watch is not None and watch.sock is not None:
            # Wakes the thread blocked reading the stream: its read returns
            # the end of the stream. close() alone would not wake it.
            with contextlib.suppress(OSError):
                watch.sock.shutdown(socket.SHUT_RDWR)

    # -- caller holds self._lock ---------------------------------------------

    def _call_current(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        if self._username is not None and self._token is None:
            self._authenticate()
        status, answer = self._post(path, body)
        if status == _HTTP_UNAUTHORIZED and self._username is not None:
            # Tokens expire (etcd's simple tokens after 5 idle minutes).
            self._authenticate()
            status, answer = self._post(path, body)
        if status != _HTTP_OK:
            code = answer.get("code", 0)
            text = answer.get("message") or answer.get("error") or f"HTTP {status}"
            raise EtcdError(f"etcd {path}: {text}", code if isinstance(code, int) else 0)
        return answer

    def _authenticate(self) -> None:
        self._token = None
        body = {"name": self._username, "password": self._password}
        status, answer = self._post("auth/authenticate", body)
        token = answer.get("token")
        if status != _HTTP_OK or not isinstance(token, str):
            text = answer.get("message") or answer.get("error") or f"HTTP {status}"
            msg = f"etcd refused user {self._username!r}: {text}"
            raise EtcdError(msg, _GRPC_UNAUTHENTICATED)
        self._token = token

    def _post(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """One request on the kept connection (opened on demand); (status, JSON answer).

        Raises ``OSError``/``HTTPException`` when the member cannot be reached
        or answers a 5xx (so the caller moves on to the next member).
        """
        if self._conn is None:
            self._conn = self._connect(self._current, self._timeout)
        conn = self._conn
        try:
            conn.request("POST", _API + path, json.dumps(body), self._headers())
            response = conn.getresponse()
            data = response.read(_MAX_ANSWER + 1)
        except BaseException:
            conn.close()
            self._conn = None
            raise
        if response.status >= _HTTP_SERVER_ERROR:
            conn.close()
            self._conn = None
            msg = f"HTTP {response.status}"
            raise http.client.HTTPException(msg)
        if len(data) > _MAX_ANSWER:
            conn.close()
            self._conn = None
            msg = f"an answer over {_MAX_ANSWER} bytes"
            raise http.client.HTTPException(msg)
        try:
            answer = json.loads(data) if data else {}
        except ValueError:
            answer = {}
        return response.status, answer if isinstance(answer, dict) else {}

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if self._token is not None:
            headers["Authorization"] = self._token
        return headers

    def _next_member(self, failed: int | None = None) -> None:
        # `failed`: the member a watch found dead, unless a request moved on already.
        if failed is not None and failed != self._current:
            return
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        # A token is per cluster, but a new member may not know one issued
        # just before a fail-over: authenticate again there.
        self._token = None
        self._current = (self._current + 1) % len(self._endpoints)

    def _connect(self, index: int, timeout: float) -> http.client.HTTPConnection:
        host, port = self._endpoints[index]
        if self._tls is None:
            return http.client.HTTPConnection(host, port, timeout=timeout)
        return http.client.HTTPSConnection(host, port, timeout=timeout, context=self._tls.context)

    def _describe(self, index: int) -> str:
        host, port = self._endpoints[index]
        scheme = "https" if self._tls is not None else "http"
        shown = f"[{host}]" if ":" in host else host
        return f"{scheme}://{shown}:{port}"


def _stream(
    conn: http.client.HTTPConnection, response: http.client.HTTPResponse, member: str
) -> Iterator[dict[str, Any]]:
    try:
        while True:
            try:
                line = response.readline(_MAX_ANSWER)
            except (TimeoutError, OSError, http.client.HTTPException) as exc:
                msg = f"the watch on {member} ended: {exc}"
                raise EtcdUnavailable(msg) from None
            if not line:
                msg = f"the watch on {member} ended: the member closed it"
                raise EtcdUnavailable(msg)
            if not line.strip():
                continue
            try:
                message = json.loads(line)
            except ValueError:
                _log.warning("etcd watch: a line that is not JSON", member=member)
                continue
            if isinstance(message, dict):
                yield message
    finally:
        conn.close()
