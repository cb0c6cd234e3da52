"""`RPCClient` and `RPCServer`: calls and casts between processes."""

from __future__ import annotations

import contextlib
import enum
import functools
import importlib.metadata
import socket
import time
import weakref
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeoutError
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from zmqactors import wire
from zmqactors.core.dispatch import Dispatcher, Exposure, check_exposure, exposed_methods
from zmqactors.core.service_api import SERVICE_NAMESPACE, ServiceEndpoint, describe_endpoints
from zmqactors.core.waiter import Waiter
from zmqactors.errors import MessagingTimeout, NoRespondersError, TransportClosedError
from zmqactors.topics import Target, matchmaker_key
from zmqactors.transport.service import Service, check_endpoints

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from zmqactors.core.stats import ServerStats
    from zmqactors.matchmaker.base import Route
    from zmqactors.transport._transport import Transport
    from zmqactors.transport.runtime import Runtime

__all__ = ["RPCClient", "RPCServer"]


# A call's own deadline is enforced by the reply-waiter; the caller waits this
# much longer only as a safety net in case the reply-waiter itself is gone.
_GRACE = 1.0
# An acknowledged cast is sent again after this long without an ack, the
# wait doubling each time up to _ACK_RETRY_MAX.
_ACK_RETRY_FIRST = 0.2
_ACK_RETRY_MAX = 2.0


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


class RPCClient:
    """Calls and casts to the servers of one `Target`. Thread-safe; cheap to `prepare`.

    ``timeout`` (seconds) bounds every call (default: the transport's
    ``timeout`` option), and how long a cast may wait for room in a full
    send queue; ``context`` is the request context, a dict sent with every
    message and visible to endpoints through `request_context()`. With ``ack=True``, `cast` returns
    only once the server has run the method (see `cast`).
    """

    def __init__(
        self,
        transport: Transport,
        target: Target,
        *,
        timeout: float | None = None,
        context: Mapping[str, Any] | None = None,
        ack: bool = False,
    ) -> None:
        if not isinstance(target, Target):
            msg = f"target must be a zmqactors Target, got {type(target).__name__}"
            raise TypeError(msg)
        if not isinstance(ack, bool):
            msg = f"invalid ack {ack!r}: True or False is required"
            raise TypeError(msg)
        self.transport = transport
        self.ack = ack
        self.target = target
        self.timeout = transport.settings.timeout if timeout is None else _check_timeout(timeout)
        # Encoded as is into every request (only read); callers see the proxy.
        self._request_context = dict(context or {})
        self.context: Mapping[str, Any] = MappingProxyType(self._request_context)

    def __repr__(self) -> str:
        acked = " ack" if self.ack else ""
        return f"<RPCClient {self.target} timeout={self.timeout}{acked}>"

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
        ack: bool | _Unset = _UNSET,
    ) -> RPCClient:
        """A new client with these fields changed; this one is unchanged.

        ``ack=True`` makes its casts acknowledged (see `cast`); it is an option
        of the client rather than of `cast` because `cast`'s keyword arguments
        are the method's.

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
            ack=self.ack if isinstance(ack, _Unset) else ack,
        )

    def _request(
        self,
        kind: wire.CallKind,
        method: str,
        args: dict[str, Any],
        msg_id: bytes,
        trace: dict[str, str] | None = None,
    ) -> tuple[bytes, bytes]:
        timeout = self.timeout if kind is not wire.CallKind.CAST else None
        return wire.request_frames(
            self.target,
            kind,
            method,
            args=args,
            context=self._request_context,
            timeout=timeout,
            msg_id=msg_id,
            trace=trace,
        )

    def _send_call(
        self,
        method: str,
        kwargs: dict[str, Any],
        future: Future[Any] | Waiter,
        trace: dict[str, str] | None = None,
    ) -> None:
        """Send a call whose outcome the reply-waiter sets on ``future`` (caller thread).

        Raises what `call_async` raises at once.
        """
        _check_method(method)
        if self.target.fanout:
            msg = f"a fanout target takes casts only, not calls ({self.target})"
            raise ValueError(msg)
        runtime = self.transport.runtime()
        route = runtime.route(self.target)
        msg_id = wire.new_msg_id()
        frames = self._request(wire.CallKind.CALL, method, kwargs, msg_id, trace)
        deadline = time.monotonic() + self.timeout
        runtime.call(
            route,
            frames,
            msg_id,
            self.target,
            method,
            future,
            deadline=deadline,
            timeout=self.timeout,
        )

    def call_async(self, method: str, /, **kwargs: Any) -> Future[Any]:
        """Send a call; the future gets its result or exception.

        The exceptions: `RemoteError` (and `NoSuchMethod`, `UnsupportedVersion`),
        `MessagingTimeout` after the client's timeout (also when the send queue
        to the server stayed full that long: the call was not sent),
        `TransportClosedError`. Blocks (up to the timeout) only while that
        send queue is full.
        Raises at once: `NoRespondersError` when no server is registered,
        ``ValueError`` for a bad method name or a fanout target, ``TypeError``
        for arguments that cannot be sent.
        """
        future: Future[Any] = Future()
        tracing = self.transport.tracing
        if tracing is None:
            self._send_call(method, kwargs, future)
            return future
        span, trace = tracing.start("call", self.target, method)
        try:
            self._send_call(method, kwargs, future, trace)
        except BaseException as exc:
            tracing.end(span, exc)
            raise
        tracing.end_with(span, future)
        return future

    def call(self, method: str, /, **kwargs: Any) -> Any:
        """Call ``method(**kwargs)`` on one server of the target and return its result.

        Raises what `call_async` raises or sets, within the timeout plus half a second.
        """
        tracing = self.transport.tracing
        if tracing is None:
            return self._call(method, kwargs)
        span, trace = tracing.start("call", self.target, method)
        try:
            result = self._call(method, kwargs, trace)
        except BaseException as exc:
            tracing.end(span, exc)
            raise
        tracing.end(span)
        return result

    def _call(
        self, method: str, kwargs: dict[str, Any], trace: dict[str, str] | None = None
    ) -> Any:
        # A Waiter, not a Future: nobody else can see this call's outcome.
        waiter = Waiter()
        self._send_call(method, kwargs, waiter, trace)
        try:
            return waiter.result(timeout=self.timeout + _GRACE)
        except FutureTimeoutError:
            waiter.cancel()
            msg = f"no reply to {method!r} from {self.target} within {self.timeout}s"
            raise MessagingTimeout(msg) from None

    def cast(self, method: str, /, **kwargs: Any) -> None:
        """Send ``method(**kwargs)`` to one server (every server with ``fanout``); no reply.

        Returns once the message is queued for sending. When the server reads
        slower than casts come, blocks while the send queue to it is full,
        and raises `MessagingTimeout` naming the full queue if it stays full
        for the client's timeout (that cast was not sent; nothing is dropped
        silently). A fanout cast raises at the first server whose queue stays
        full; the servers before it got the cast.

        On a client prepared with ``ack=True``, returns only once one server
        has run the method (returned or raised): the cast is sent again with
        the same message id, the wait doubling from 0.2 s to 2 s and the
        route looked up afresh each time, until a server acknowledges it,
        and the server runs each message id once (it remembers ids for five
        minutes). Raises `MessagingTimeout` if no acknowledgement came within
        the timeout (the method may or may not have run), `NoSuchMethod` or
        `UnsupportedVersion` at once, and ``ValueError`` for a fanout target.

        Otherwise raises like `call_async`.
        """
        _check_method(method)
        tracing = self.transport.tracing
        if tracing is None:
            self._cast(method, kwargs)
            return
        with tracing.sent("cast", self.target, method) as trace:
            self._cast(method, kwargs, trace)

    def _cast(
        self, method: str, kwargs: dict[str, Any], trace: dict[str, str] | None = None
    ) -> None:
        if self.ack:
            if self.target.fanout:
                msg = (
                    f"acknowledged casts go to one server, not to a fanout target "
                    f"({self.target}); prepare(ack=False) for fanout"
                )
                raise ValueError(msg)
            self._cast_acked(method, kwargs, trace)
            return
        runtime = self.transport.runtime()
        routes = runtime.routes(self.target)
        frames = self._request(wire.CallKind.CAST, method, kwargs, wire.new_msg_id(), trace)
        deadline = time.monotonic() + self.timeout
        runtime.cast(routes, frames, self.target, method, deadline=deadline, timeout=self.timeout)

    def _cast_acked(
        self, method: str, kwargs: dict[str, Any], trace: dict[str, str] | None
    ) -> None:
        """Send the cast until a server acknowledges it or the timeout passes (caller thread)."""
        runtime = self.transport.runtime()
        msg_id = wire.new_msg_id()
        frames = self._request(wire.CallKind.ACKED_CAST, method, kwargs, msg_id, trace)
        deadline = time.monotonic() + self.timeout
        wait = _ACK_RETRY_FIRST
        tries = 0
        why = "no server registered"
        while True:
            now = time.monotonic()
            if now >= deadline:
                msg = (
                    f"cast {method!r} to {self.target} not acknowledged within "
                    f"{self.timeout}s ({tries} tries; last: {why})"
                )
                raise MessagingTimeout(msg)
            attempt_end = min(now + wait, deadline)
            wait = min(wait * 2, _ACK_RETRY_MAX)
            if tries:
                self.transport.stats.incr("ack_retries")
            tries += 1
            try:
                # Picked afresh each time: a restarted server has a new address.
                route = runtime.route(self.target)
            except NoRespondersError as exc:
                why = str(exc)
                self._refresh(runtime)
                time.sleep(max(0.0, attempt_end - time.monotonic()))
                continue
            failure = self._ack_attempt(
                runtime, route, method=method, frames=frames, msg_id=msg_id, end=attempt_end
            )
            if failure is None:
                return
            why = failure

    def _ack_attempt(
        self,
        runtime: Runtime,
        route: Route,
        *,
        method: str,
        frames: tuple[bytes, bytes],
        msg_id: bytes,
        end: float,
    ) -> str | None:
        """Send one copy of an acknowledged cast; None once acknowledged, else why not."""
        waiter = Waiter()
        runtime.call(
            route, frames, msg_id, self.target, method, waiter, deadline=end, timeout=self.timeout
        )
        try:
            waiter.result(timeout=max(0.0, end - time.monotonic()) + _GRACE)
        except NoRespondersError as exc:
            # Unreachable, or a stale route: nothing ran there. Look again.
            self._refresh(runtime)
            time.sleep(max(0.0, end - time.monotonic()))
            return str(exc)
        except MessagingTimeout as exc:
            return str(exc)
        except FutureTimeoutError:
            waiter.cancel()
            return "the reply-waiter did not answer"
        # NoSuchMethod and UnsupportedVersion propagate: sending again cannot help.
        return None

    def _refresh(self, runtime: Runtime) -> None:
        with contextlib.suppress(TransportClosedError):
            runtime.refresh(self.target)


@functools.cache
def _version() -> str:
    # Not zmqactors.__version__: that import would reach the whole package.
    try:
        return importlib.metadata.version("zmqactors")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


class RPCServer(Service):
    """Serves the public methods of ``endpoints`` to the clients of ``target``.

    Endpoints are plain objects; a call ``client.call("add", a=1)`` runs
    ``endpoint.add(a=1)`` on a thread of the transport's worker pool, at
    most ``executor_size`` of this server's calls at once. An
    endpoint may carry a ``target`` attribute whose ``namespace`` and
    ``version`` say what it serves. The server's name is ``target.server``,
    else the transport's ``host`` option, else this machine's host name.

    Only methods are callable: functions defined in the body of an
    endpoint's class or its bases (not ``object``), with names not starting
    with ``_``; never instance attributes or properties. ``exposed="methods"``
    (the default) serves all of them, ``exposed="decorated"`` only those
    marked with `zmqactors.expose` (``ValueError`` if there is none). An
    endpoint's exception reaches the caller as type and message; its
    traceback too only with the transport's ``send_tracebacks`` option.

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
        exposed: Exposure = "methods",
    ) -> None:
        if not isinstance(target, Target):
            msg = f"target must be a zmqactors Target, got {type(target).__name__}"
            raise TypeError(msg)
        if target.fanout:
            msg = f"a server target cannot be a fanout target ({target})"
            raise ValueError(msg)
        self.endpoints = check_endpoints(endpoints, "RPCServer")
        for endpoint in self.endpoints:
            if getattr(getattr(endpoint, "target", None), "namespace", None) == SERVICE_NAMESPACE:
                msg = (
                    f"namespace {SERVICE_NAMESPACE!r} is reserved for the service API "
                    f"(endpoint {type(endpoint).__name__})"
                )
                raise ValueError(msg)
        self.exposed = check_exposure(exposed)
        if exposed == "decorated" and not any(
            exposed_methods(endpoint, exposed) for endpoint in self.endpoints
        ):
            msg = (
                'exposed="decorated" but no endpoint has a method marked with '
                "@zmqactors.expose: clients could call nothing"
            )
            raise ValueError(msg)
        self._counters: ServerStats | None = None
        server = target.server or transport.settings.host or socket.gethostname()
        self.target = target.evolve(server=server)
        super().__init__(
            transport,
            self.target,
            transport.settings.executor_size if executor_size is None else executor_size,
        )

    def _handler(self) -> Dispatcher:
        settings = self.transport.settings
        service = None
        endpoints = self.endpoints
        if settings.service_api:
            # Weakly: the poller's handler table must not keep this server (and
            # so its transport) alive after the application dropped them.
            describe = weakref.WeakMethod(self._describe)
            service = ServiceEndpoint(
                lambda: d() if (d := describe()) is not None else {},
                self.transport.stats.snapshot,
            )
            endpoints = (*endpoints, service)
        dispatcher = Dispatcher(
            self.target,
            endpoints,
            settings.max_message_size,
            self.transport.stats,
            exposed=self.exposed,
            send_tracebacks=settings.send_tracebacks,
            tracer=self.transport.tracing,
            decode_limits=settings.decode_limits,
        )
        if service is not None:
            service.bind(dispatcher.counters)
        self._counters = dispatcher.counters
        return dispatcher

    def metrics(self) -> tuple[Mapping[str, str], ServerStats] | None:
        """Exchange, topic and server name, and the counters of this server once started."""
        if self._counters is None:
            return None
        target = self.target
        labels = {
            "exchange": target.exchange_name,
            "topic": target.topic,
            "server": target.server or "",
        }
        return labels, self._counters

    def _describe(self) -> dict[str, Any]:
        """What the service API's ``info`` says of this server (any worker thread)."""
        target = self.target
        return {
            "server": target.server,
            "topic": target.topic,
            "exchange": target.exchange_name,
            "zmqactors_version": _version(),
            "address": self.address,
            "curve": self.server_key is not None,
            "executor_size": self.executor_size,
            "endpoints": describe_endpoints(self.endpoints, self.exposed),
        }

    def _registrations(self) -> list[tuple[str, str]]:
        return [(matchmaker_key(self.target), self.target.server or "")]
