"""`RPCClient` and `RPCServer`: calls and casts between processes."""

from __future__ import annotations

import concurrent.futures
import contextlib
import enum
import socket
import threading
import time
from collections.abc import Mapping, Sequence
from types import MappingProxyType, TracebackType
from typing import TYPE_CHECKING, Any, Self

import pykka
import structlog

from zmqactors.actors.listener import Listener
from zmqactors.actors.messages import (
    AddServer,
    DrainServer,
    Register,
    RemoveServer,
    SendCall,
    SendCast,
    Unregister,
)
from zmqactors.errors import MessagingError, MessagingTimeout, TransportClosedError
from zmqactors.topics import Target, matchmaker_key
from zmqactors.transport import protocol
from zmqactors.transport.dispatch import Dispatcher

if TYPE_CHECKING:
    from zmqactors.transport._transport import Transport

__all__ = ["RPCClient", "RPCServer"]

_log = structlog.get_logger("zmqactors.rpc")

# A call's own deadline is enforced by the reply-waiter; the caller waits this
# much longer only as a safety net in case the reply-waiter itself is gone.
_GRACE = 1.0
# How long a server's start/stop waits for an actor to answer.
_ACTOR_TIMEOUT = 10.0


class _Unset(enum.Enum):
    UNSET = enum.auto()


_UNSET = _Unset.UNSET


def _check_method(method: object) -> str:
    if not isinstance(method, str) or not method.isidentifier() or method.startswith("_"):
        msg = f"invalid method name {method!r}: a public identifier (no leading '_') is required"
        raise ValueError(msg)
    return method


def _check_timeout(timeout: object) -> float:
    if (
        isinstance(timeout, bool)
        or not isinstance(timeout, int | float)
        or not 0 < timeout < float("inf")
    ):
        msg = f"invalid timeout {timeout!r}: a positive number of seconds is required"
        raise ValueError(msg)
    return float(timeout)


def _closed() -> TransportClosedError:
    return TransportClosedError("the transport is closed")


class RPCClient:
    """Calls and casts to the servers of one `Target`. Thread-safe; cheap to `prepare`.

    ``timeout`` (seconds) bounds every call (default: the transport's
    ``timeout`` option); ``context`` is a dict sent with every message and
    visible to endpoints through `request_context()`.
    """

    def __init__(
        self,
        transport: Transport,
        target: Target,
        *,
        timeout: float | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> None:
        if not isinstance(target, Target):
            msg = f"target must be a zmqactors Target, got {type(target).__name__}"
            raise TypeError(msg)
        self.transport = transport
        self.target = target
        self.timeout = transport.settings.timeout if timeout is None else _check_timeout(timeout)
        self.context: Mapping[str, Any] = MappingProxyType(dict(context or {}))

    def __repr__(self) -> str:
        return f"<RPCClient {self.target} timeout={self.timeout}>"

    def prepare(
        self,
        *,
        topic: str | _Unset = _UNSET,
        server: str | _Unset | None = _UNSET,
        fanout: bool | _Unset = _UNSET,
        exchange: str | _Unset | None = _UNSET,
        namespace: str | _Unset | None = _UNSET,
        version: str | _Unset | None = _UNSET,
        timeout: float | _Unset = _UNSET,
        context: Mapping[str, Any] | _Unset = _UNSET,
    ) -> RPCClient:
        """A new client with these fields changed; this one is unchanged.

        Raises ``ValueError`` naming the field for a bad value.
        """
        changes = {
            name: value
            for name, value in (
                ("topic", topic),
                ("server", server),
                ("fanout", fanout),
                ("exchange", exchange),
                ("namespace", namespace),
                ("version", version),
            )
            if value is not _UNSET
        }
        return RPCClient(
            self.transport,
            self.target.evolve(**changes) if changes else self.target,
            timeout=self.timeout if isinstance(timeout, _Unset) else timeout,
            context=self.context if isinstance(context, _Unset) else context,
        )

    def _request(
        self, kind: protocol.CallKind, method: str, args: dict[str, Any], msg_id: bytes
    ) -> tuple[bytes, bytes]:
        target = self.target
        header, body = protocol.encode(
            protocol.Request(
                msg_id,
                kind,
                target.exchange_name,
                target.topic,
                target.server,
                target.namespace,
                target.version,
                method,
                args,
                dict(self.context),
                self.timeout if kind is protocol.CallKind.CALL else None,
            )
        )
        return header, body

    def call_async(self, method: str, /, **kwargs: Any) -> concurrent.futures.Future[Any]:
        """Send a call; the future gets its result or exception.

        The exceptions: `RemoteError` (and `NoSuchMethod`, `UnsupportedVersion`),
        `MessagingTimeout` after the client's timeout, `TransportClosedError`.
        Raises at once: `NoRespondersError` when no server is registered,
        ``ValueError`` for a bad method name or a fanout target, ``TypeError``
        for arguments that cannot be sent.
        """
        _check_method(method)
        if self.target.fanout:
            msg = f"a fanout target takes casts only, not calls ({self.target})"
            raise ValueError(msg)
        actors = self.transport._actors()  # noqa: SLF001 - the transport's own clients
        route = actors.router.pick(self.target)
        msg_id = protocol.new_msg_id()
        frames = self._request(protocol.CallKind.CALL, method, kwargs, msg_id)
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        message = SendCall(
            route.address,
            frames,
            msg_id,
            time.monotonic() + self.timeout,
            self.target,
            method,
            future,
        )
        try:
            actors.reply_waiter.tell(message)
        except pykka.ActorDeadError:
            raise _closed() from None
        return future

    def call(self, method: str, /, **kwargs: Any) -> Any:
        """Call ``method(**kwargs)`` on one server of the target and return its result.

        Raises what `call_async` raises or sets, within the timeout plus half a second.
        """
        future = self.call_async(method, **kwargs)
        try:
            return future.result(timeout=self.timeout + _GRACE)
        except concurrent.futures.TimeoutError:
            future.cancel()
            msg = f"no reply to {method!r} from {self.target} within {self.timeout}s"
            raise MessagingTimeout(msg) from None

    def cast(self, method: str, /, **kwargs: Any) -> None:
        """Send ``method(**kwargs)`` to one server (every server with ``fanout``); no reply.

        Returns once the message is queued for sending. Raises like `call_async`.
        """
        _check_method(method)
        actors = self.transport._actors()  # noqa: SLF001 - the transport's own clients
        routes = (
            actors.router.routes(self.target)
            if self.target.fanout
            else (actors.router.pick(self.target),)
        )
        frames = self._request(protocol.CallKind.CAST, method, kwargs, protocol.new_msg_id())
        try:
            for route in routes:
                actors.reply_waiter.tell(SendCast(route.address, frames, self.target, method))
        except pykka.ActorDeadError:
            raise _closed() from None


class _State(enum.Enum):
    NEW = "new"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"


class RPCServer:
    """Serves the public methods of ``endpoints`` to the clients of ``target``.

    Endpoints are plain objects; a call ``client.call("add", a=1)`` runs
    ``endpoint.add(a=1)`` on one of ``executor_size`` listener threads. An
    endpoint may carry a ``target`` attribute whose ``namespace`` and
    ``version`` say what it serves. The server's name is ``target.server``,
    else the transport's ``host`` option, else this machine's host name.

    `start` returns once the server is bound and registered; `stop` takes no
    new requests (new calls get `NoRespondersError`) and unregisters; `wait`
    lets the requests already taken finish, then releases everything. Also a
    context manager.
    """

    def __init__(
        self,
        transport: Transport,
        target: Target,
        endpoints: Sequence[object],
        *,
        executor_size: int | None = None,
    ) -> None:
        if not isinstance(target, Target):
            msg = f"target must be a zmqactors Target, got {type(target).__name__}"
            raise TypeError(msg)
        if target.fanout:
            msg = f"a server target cannot be a fanout target ({target})"
            raise ValueError(msg)
        if isinstance(endpoints, str | bytes) or not isinstance(endpoints, Sequence):
            msg = f"endpoints must be a sequence of objects, got {type(endpoints).__name__}"
            raise TypeError(msg)
        if not endpoints:
            msg = "an RPCServer needs at least one endpoint"
            raise ValueError(msg)
        size = transport.settings.executor_size if executor_size is None else executor_size
        if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= 1024:  # noqa: PLR2004 - the option's bounds
            msg = f"invalid executor_size {size!r}: an integer from 1 to 1024 is required"
            raise ValueError(msg)
        server = target.server or transport.settings.host or socket.gethostname()
        self.transport = transport
        self.target = target.evolve(server=server)
        self.endpoints = tuple(endpoints)
        self.executor_size = size
        self._lock = threading.Lock()
        self._state = _State.NEW
        self._pid = 0
        self._server_id = ""
        self._address = ""
        self._listeners: list[pykka.ActorRef[Any]] = []
        self._drained: concurrent.futures.Future[None] | None = None
        self._log = _log.bind(target=str(self.target))

    def __repr__(self) -> str:
        return f"<RPCServer {self.target} {self.state}>"

    @property
    def state(self) -> str:
        """``new``, ``running``, ``stopping`` or ``stopped`` (in this process)."""
        return self._state.value if self._owned() else _State.NEW.value

    @property
    def address(self) -> str:
        """The advertised address, e.g. ``tcp://127.0.0.1:40123`` (empty until started)."""
        return self._address if self._owned() else ""

    def _owned(self) -> bool:
        # A server inherited through fork() is not running in the child.
        import os  # noqa: PLC0415 - local to keep the hot module namespace small

        return self._pid == os.getpid()

    def start(self) -> None:
        """Bind, start the listeners and register; returns when calls can reach the server.

        Raises `ConfigurationError` if the socket cannot be bound, `MessagingError`
        if the matchmaker refuses the registration, `TransportClosedError`.
        Starting a running server does nothing.
        """
        with self._lock:
            if self._owned() and self._state is _State.RUNNING:
                return
            self._start()

    def _start(self) -> None:
        import os  # noqa: PLC0415

        transport = self.transport
        actors = transport._actors()  # noqa: SLF001 - the transport owns its servers
        poller = transport._poller()  # noqa: SLF001
        server_id = transport._next_id()  # noqa: SLF001
        backend = f"inproc://zmqactors-server-{server_id}"
        self._pid = os.getpid()
        self._server_id = server_id
        try:
            self._address = poller.ask(
                AddServer(server_id, self.target, backend), block=True, timeout=_ACTOR_TIMEOUT
            )
        except pykka.ActorDeadError:
            raise _closed() from None
        dispatcher = Dispatcher(
            self.target, self.endpoints, transport.settings.max_message_size, transport.stats
        )
        self._listeners = [Listener.start(backend, dispatcher) for _ in range(self.executor_size)]
        key = matchmaker_key(self.target)
        try:
            actors.matchmaker.ask(
                Register(key, self.target.server or "", self._address), timeout=_ACTOR_TIMEOUT
            )
        except Exception as exc:
            self._release(poller)
            if isinstance(exc, pykka.ActorDeadError):
                raise _closed() from None
            msg = f"cannot register {self.target}: {exc}"
            raise MessagingError(msg) from exc
        self._state = _State.RUNNING
        transport._add_server(self)  # noqa: SLF001
        self._log.info("server started", address=self._address, executor_size=self.executor_size)

    def stop(self) -> None:
        """Unregister and take no new requests; returns at once. Idempotent.

        On a server inherited through ``fork()`` and not started in this process, does nothing.
        """
        with self._lock:
            if not self._owned() or self._state is not _State.RUNNING:
                return
            self._state = _State.STOPPING
            actors = self.transport._actors()  # noqa: SLF001
            try:
                actors.matchmaker.ask(
                    Unregister(
                        matchmaker_key(self.target), self.target.server or "", self._address
                    ),
                    timeout=_ACTOR_TIMEOUT,
                )
            except (pykka.ActorDeadError, pykka.Timeout) as exc:
                self._log.warning("could not unregister", error=str(exc))
            self._drained = concurrent.futures.Future()
            try:
                self.transport._poller().tell(DrainServer(self._server_id, self._drained))  # noqa: SLF001
            except (pykka.ActorDeadError, TransportClosedError):
                self._drained.set_result(None)

    def wait(self, timeout: float | None = None) -> None:
        """Wait until the requests taken before `stop` are answered, then release everything.

        Raises `MessagingTimeout` if that takes longer than ``timeout`` seconds
        (the server stays stopping; call `wait` again).
        """
        with self._lock:
            if not self._owned() or self._state is not _State.STOPPING:
                return
            drained = self._drained
            assert drained is not None  # noqa: S101 - set by stop()
        try:
            drained.result(timeout=timeout)
        except concurrent.futures.TimeoutError:
            msg = f"{self.target} still has requests in progress after {timeout}s"
            raise MessagingTimeout(msg) from None
        with self._lock:
            if self._state is _State.STOPPING:
                try:
                    poller = self.transport._poller()  # noqa: SLF001
                except TransportClosedError:
                    poller = None
                self._release(poller)
                self._state = _State.STOPPED
                self.transport._discard_server(self)  # noqa: SLF001
                self._log.info("server stopped")

    def _release(self, poller: pykka.ActorRef[Any] | None) -> None:
        for ref in self._listeners:
            try:
                ref.stop(block=False)
            except pykka.ActorDeadError:
                continue
        self._listeners = []
        if poller is not None:
            with contextlib.suppress(pykka.ActorDeadError, pykka.Timeout):
                poller.ask(RemoveServer(self._server_id), timeout=_ACTOR_TIMEOUT)

    def _abort(self) -> None:
        """The transport is closing: stop at once, without waiting (any thread)."""
        with self._lock:
            if not self._owned() or self._state in (_State.NEW, _State.STOPPED):
                return
            self._state = _State.STOPPED
            for ref in self._listeners:
                try:
                    ref.stop(block=False)
                except pykka.ActorDeadError:
                    continue
            self._listeners = []
            if self._drained is not None and not self._drained.done():
                self._drained.set_result(None)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
        self.wait()
