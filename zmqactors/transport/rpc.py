"""`RPCClient` and `RPCServer`: calls and casts between processes."""

from __future__ import annotations

import concurrent.futures
import enum
import socket
import time
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import pykka

from zmqactors.actors.messages import SendCall, SendCast
from zmqactors.errors import MessagingTimeout, TransportClosedError
from zmqactors.topics import Target, matchmaker_key
from zmqactors.transport import protocol
from zmqactors.transport.dispatch import Dispatcher
from zmqactors.transport.service import Service, check_endpoints

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from zmqactors.transport._transport import Transport

__all__ = ["RPCClient", "RPCServer"]


# A call's own deadline is enforced by the reply-waiter; the caller waits this
# much longer only as a safety net in case the reply-waiter itself is gone.
_GRACE = 1.0


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
        timeout = self.timeout if kind is protocol.CallKind.CALL else None
        return protocol.request_frames(
            self.target,
            kind,
            method,
            args=args,
            context=dict(self.context),
            timeout=timeout,
            msg_id=msg_id,
        )

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
            server_key=route.server_key,
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
                actors.reply_waiter.tell(
                    SendCast(route.address, frames, self.target, method, route.server_key)
                )
        except pykka.ActorDeadError:
            raise _closed() from None


class RPCServer(Service):
    """Serves the public methods of ``endpoints`` to the clients of ``target``.

    Endpoints are plain objects; a call ``client.call("add", a=1)`` runs
    ``endpoint.add(a=1)`` on one of ``executor_size`` listener threads. An
    endpoint may carry a ``target`` attribute whose ``namespace`` and
    ``version`` say what it serves. The server's name is ``target.server``,
    else the transport's ``host`` option, else this machine's host name.

    `start` returns once the server is bound and registered; `stop` takes no
    new requests (new calls get `NoRespondersError`) and unregisters; `wait`
    lets the requests already taken finish, then releases everything. Also a
    context manager. See `Service` for what a forked child inherits.
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
        self.endpoints = check_endpoints(endpoints, "RPCServer")
        server = target.server or transport.settings.host or socket.gethostname()
        self.target = target.evolve(server=server)
        super().__init__(
            transport,
            self.target,
            transport.settings.executor_size if executor_size is None else executor_size,
        )

    def _handler(self) -> Dispatcher:
        settings = self.transport.settings
        return Dispatcher(
            self.target, self.endpoints, settings.max_message_size, self.transport.stats
        )

    def _registrations(self) -> list[tuple[str, str]]:
        return [(matchmaker_key(self.target), self.target.server or "")]
