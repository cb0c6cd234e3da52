"""Turning a request into an endpoint call and its outcome into a reply body.

Pure logic with no sockets: a worker actor calls `Dispatcher.handle` with a
request body in its own thread and sends back what it returns. Nothing from
the network is evaluated.

What a caller can reach (`exposed_methods`) is fixed when the dispatcher is
made: the *methods* of each endpoint, that is the functions (plain, static
or class methods, or function wrappers such as ``functools.cache``) defined
in the body of the endpoint's class or of its bases other than ``object``,
whose names do not start with ``_``. Never an instance attribute (callable
or not; it cannot even shadow a method), a property or other descriptor (no
getter runs for a name a caller sends), a nested class, or anything of
``object``. With ``exposed="decorated"``, only the methods marked with
`expose`.

By default an endpoint's exception reaches the caller as its type and
message; the traceback is logged here with the message id, and sent too
only with ``send_tracebacks``.
"""

from __future__ import annotations

import contextlib
import contextvars
import inspect
import time
import traceback
import types
from typing import TYPE_CHECKING, Any, Final, Literal, TypeVar, get_args

import structlog

from zmqactors import wire
from zmqactors.core.dedup import DedupCache, Seen
from zmqactors.core.stats import ServerStats
from zmqactors.errors import ProtocolError
from zmqactors.topics import Target, version_compatible

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping, Sequence

    from zmqactors._limits import DecodeLimits
    from zmqactors.core.handler import ServerTracer
    from zmqactors.core.stats import Stats

__all__ = [
    "SERVICE_NAMESPACE",
    "Dispatcher",
    "Exposure",
    "check_exposure",
    "expired",
    "expose",
    "exposed_methods",
    "request_context",
    "request_context_set",
]

Exposure = Literal["methods", "decorated"]
"""Which methods of an endpoint a server exposes: every public one, or those marked `expose`."""
_EXPOSURES: Final[tuple[str, ...]] = get_args(Exposure)
# Set on a function by `expose`; copied by functools.wraps like any attribute.
_MARK: Final = "__zmqactors_exposed__"
_F = TypeVar("_F")
_Msg = TypeVar("_Msg", bound=wire.Message)

_log = structlog.get_logger("zmqactors.dispatch")
_EMPTY: Mapping[str, Any] = {}
_request_context: contextvars.ContextVar[Mapping[str, Any]] = contextvars.ContextVar(
    "zmqactors_request_context", default=_EMPTY
)


def request_context() -> Mapping[str, Any]:
    """Inside an endpoint method: the caller's context dict (empty elsewhere)."""
    return _request_context.get()


@contextlib.contextmanager
def request_context_set(context: Mapping[str, Any]) -> Iterator[None]:
    """Make ``context`` what `request_context()` returns in this thread, for the block."""
    token = _request_context.set(context)
    try:
        yield
    finally:
        _request_context.reset(token)


def expose(method: _F) -> _F:
    """Mark ``method`` as callable by clients of a server with ``exposed="decorated"``.

    Use on a function in a class body (also over or under ``staticmethod``,
    ``classmethod`` or a ``functools.wraps``-style decorator); a server with
    the default ``exposed="methods"`` serves every public method anyway.
    Raises ``TypeError`` for anything that is not a function and
    ``ValueError`` for a name starting with ``_``, which is never callable.
    """
    function = method.__func__ if isinstance(method, staticmethod | classmethod) else method
    name = getattr(function, "__name__", None)
    if not callable(function) or isinstance(function, type) or not isinstance(name, str):
        msg = f"expose() takes a method defined in a class body, got {method!r}"
        raise TypeError(msg)
    if name.startswith("_"):
        msg = f"expose(): {name!r} starts with '_', and such names are never callable remotely"
        raise ValueError(msg)
    try:
        setattr(function, _MARK, True)
    except (AttributeError, TypeError):
        msg = f"expose() cannot mark {method!r} (a built-in?): wrap it in a method"
        raise TypeError(msg) from None
    return method


def check_exposure(exposed: object) -> Exposure:
    """``exposed`` if it names an `Exposure`; ``ValueError`` naming the value otherwise."""
    if exposed not in _EXPOSURES:
        known = " or ".join(repr(name) for name in _EXPOSURES)
        msg = f"invalid exposed {exposed!r}: {known} is required"
        raise ValueError(msg)
    return exposed  # type: ignore[return-value]


def _method_function(value: object) -> object | None:
    """The function behind a class attribute that is a method, else None (never runs a getter)."""
    if isinstance(value, staticmethod | classmethod):
        value = value.__func__
    if isinstance(value, types.FunctionType):
        return value
    kind = type(value)
    if (
        isinstance(value, type)
        or not hasattr(kind, "__get__")
        or hasattr(kind, "__set__")
        or hasattr(kind, "__delete__")
    ):
        return None
    # A caching or logging wrapper (functools.cache, wraps) around a function.
    return value if isinstance(inspect.unwrap(value), types.FunctionType) else None  # type: ignore[arg-type]


def exposed_methods(endpoint: object, exposed: Exposure) -> dict[str, Callable[..., Any]]:
    """The methods of ``endpoint`` a caller may call, by name, bound to it (see the module doc)."""
    cls = type(endpoint)
    methods: dict[str, Callable[..., Any]] = {}
    decided: set[str] = set()
    for klass in cls.__mro__:
        if klass is object:
            continue
        for name, value in vars(klass).items():
            if name in decided:
                continue  # a subclass's attribute of that name decides, method or not
            decided.add(name)
            if name.startswith("_"):
                continue
            function = _method_function(value)
            if function is None:
                continue
            if exposed == "decorated" and getattr(function, _MARK, False) is not True:
                continue
            methods[name] = value.__get__(endpoint, cls)
    return methods


def _escape(text: str) -> str:
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _qualified_name(exc: BaseException) -> str:
    cls = type(exc)
    return f"{cls.__module__}.{cls.__qualname__}"


# The namespace of the service API every RPC server answers (`core.service_api`).
SERVICE_NAMESPACE: Final = "zmqactors"


class _Uncounted:
    """Counters that count nothing: for the service API's own calls."""

    def begin(self) -> None:
        """Nothing."""

    def end(self, seconds: float, *, failed: bool) -> None:
        """Nothing."""


_UNCOUNTED: Final = _Uncounted()


class _Failure(Exception):  # noqa: N818 - internal control flow, carries an ErrorKind
    def __init__(self, kind: wire.ErrorKind, exc_type: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.exc_type = exc_type
        self.message = message


def decode_as(
    kind: type[_Msg], body: bytes, limits: DecodeLimits | int, stats: Stats, log: Any
) -> _Msg | None:
    """The ``kind`` message in ``body``, or None: malformed or another kind (counted, logged).

    Both count as ``protocol_errors``: a peer sent what this handler never takes.
    """
    try:
        message = wire.decode_body(body, limits)
    except ProtocolError as exc:
        stats.incr("protocol_errors")
        log.warning("dropped a malformed message", expected=kind.__name__, error=str(exc))
        return None
    if not isinstance(message, kind):
        stats.incr("protocol_errors")
        log.warning(
            "dropped a message of the wrong kind",
            expected=kind.__name__,
            got=type(message).__name__,
        )
        return None
    return message


def expired(request: wire.Request, arrival: float, stats: Stats) -> bool:
    """Whether ``request`` waited past its timeout since ``arrival`` (counted: ``expired_dropped``).

    Only calls and acknowledged casts expire: their caller stops waiting
    at its timeout, so running them would be wasted (and surprising) work.
    Clocks of two hosts are never compared: arrival plus the timeout falls
    after the caller's own deadline, so a call its caller still waits for is
    never dropped. ``arrival`` is ``time.monotonic()``.
    """
    timeout = request.timeout
    if timeout is None or request.kind is wire.CallKind.CAST:
        return False
    if time.monotonic() - arrival <= timeout:
        return False
    stats.incr("expired_dropped")
    return True


class Dispatcher:
    """Finds and calls the endpoint method a request names. Any worker thread."""

    def __init__(
        self,
        target: Target,
        endpoints: Sequence[object],
        max_message_size: int,
        stats: Stats,
        dedup: DedupCache | None = None,
        *,
        exposed: Exposure = "methods",
        send_tracebacks: bool = False,
        tracer: ServerTracer | None = None,
        decode_limits: DecodeLimits | None = None,
    ) -> None:
        self._target = target
        self._tracer = tracer
        # What a request may decode to (Settings.decode_limits); by default the
        # default limits within max_message_size.
        self._decode_limits: DecodeLimits | int = (
            max_message_size if decode_limits is None else decode_limits
        )
        self._endpoints = tuple(endpoints)
        # Fixed now: name -> (endpoint, bound method), in endpoint order.
        self._methods: dict[str, list[tuple[object, Callable[..., Any]]]] = {}
        exposed = check_exposure(exposed)
        for endpoint in self._endpoints:
            for name, method in exposed_methods(endpoint, exposed).items():
                self._methods.setdefault(name, []).append((endpoint, method))
        self._send_tracebacks = send_tracebacks
        self._max_size = max_message_size
        self._stats = stats
        # Shared by the server's worker threads: a retried acknowledged
        # cast must not run on a second worker while the first runs it.
        self._dedup = DedupCache() if dedup is None else dedup
        self._counters = ServerStats()
        self._log = _log.bind(actor="worker", target=str(target))

    def handle(
        self,
        body: bytes,
        client: bytes = b"",  # noqa: ARG002 - replies go back inline
        arrival: float | None = None,
    ) -> bytes | None:
        """Run the request in ``body``; return the reply body, or None when none is due.

        Never raises for anything a peer sent: malformed requests are logged,
        counted (``protocol_errors``) and answered with nothing. A call or
        acknowledged cast whose caller has given up (`expired`) is counted
        (``expired_dropped``) and neither run nor answered.
        """
        request = self._runnable(body, arrival)
        if request is None:
            return None
        if request.kind is wire.CallKind.ACKED_CAST:
            return self._handle_acked(request)
        return self._handle_request(request)

    def _handle_request(self, request: wire.Request) -> bytes | None:
        """Run a call or a plain cast; the reply body (None for a cast)."""
        is_call = request.kind is wire.CallKind.CALL
        try:
            method = self._resolve(request)
        except _Failure as failure:
            return self._refused(request, failure)
        # The service API's own calls (stats asking) are not counted.
        counters = self._counters if request.namespace != SERVICE_NAMESPACE else _UNCOUNTED
        counters.begin()
        started = time.perf_counter()
        failed = True
        try:
            result = self._traced_invoke(method, request, call=is_call)
            body = self._reply_body(request, result) if is_call else None
            failed = False
        except _Failure as failure:
            # A result over the size limit: the endpoint ran.
            return self._error(request, failure.kind, failure.exc_type, failure.message, "")
        except Exception as exc:  # noqa: BLE001 - any endpoint error goes back to the caller
            self._log.warning(
                "call failed" if is_call else "cast failed",
                msg_id=request.msg_id.hex(),
                method=request.method,
                exc_info=True,
            )
            text = traceback.format_exc() if self._send_tracebacks and is_call else ""
            return self._error(request, wire.ErrorKind.REMOTE, _qualified_name(exc), str(exc), text)
        finally:
            counters.end(time.perf_counter() - started, failed=failed)
        return body

    @property
    def counters(self) -> ServerStats:
        """The server's own counters and handling times (its ``stats`` service method)."""
        return self._counters

    def _refused(self, request: wire.Request, failure: _Failure) -> bytes | None:
        self._counters.refuse()
        if failure.kind is wire.ErrorKind.NOT_SERVED:
            self._stats.incr("misrouted")
        self._log.info("request refused", msg_id=request.msg_id.hex(), reason=failure.message)
        return self._error(request, failure.kind, failure.exc_type, failure.message, "")

    def _runnable(self, body: bytes, arrival: float | None) -> wire.Request | None:
        """The request in ``body`` if it is one to run (not malformed, not expired)."""
        request = decode_as(wire.Request, body, self._decode_limits, self._stats, self._log)
        if request is None:
            return None
        if arrival is not None and expired(request, arrival, self._stats):
            return None
        return request

    def _handle_acked(self, request: wire.Request) -> bytes | None:
        """Run an acknowledged cast once per message id; the body to send back, or None.

        An `Ack` once the endpoint has returned or raised (its exception is
        logged, as for any cast), and again for a copy that arrives after
        that; nothing for a copy that arrives while it runs (the first copy's
        ack answers both) or for a request this server does not serve (the
        sender retries, looking its route up again). A bad method or version
        gets an `ErrorReply`: retrying cannot help.
        """
        msg_id = request.msg_id
        try:
            method = self._resolve(request)
        except _Failure as failure:
            body = self._refused(request, failure)
            return None if failure.kind is wire.ErrorKind.NOT_SERVED else body
        seen = self._dedup.begin(msg_id)
        if seen is not Seen.NEW:
            self._stats.incr("duplicates_dropped")
            return None if seen is Seen.RUNNING else wire.encode(wire.Ack(msg_id))[1]
        counters = self._counters
        counters.begin()
        started = time.perf_counter()
        failed = True
        try:
            self._traced_invoke(method, request, call=False)
            failed = False
        except Exception:  # noqa: BLE001 - a cast's failure stays on the server, as for any cast
            self._log.warning(
                "cast failed", msg_id=msg_id.hex(), method=request.method, exc_info=True
            )
        finally:
            counters.end(time.perf_counter() - started, failed=failed)
            self._dedup.finish(msg_id)
        return wire.encode(wire.Ack(msg_id))[1]

    def next_deadline(self) -> float | None:
        """RPC dispatch has no timers."""
        return None

    def on_deadline(self, now: float) -> None:
        """RPC dispatch has no timers."""

    def _reply_body(self, request: wire.Request, result: Any) -> bytes:
        body = wire.encode(wire.Reply(request.msg_id, result))[1]
        if len(body) > self._max_size:
            msg = (
                f"the result of {request.method!r} is {len(body)} bytes, "
                f"over the limit of {self._max_size}"
            )
            raise _Failure(wire.ErrorKind.REMOTE, "zmqactors.errors.ProtocolError", msg)
        return body

    def _error(
        self,
        request: wire.Request,
        kind: wire.ErrorKind,
        exc_type: str,
        message: str,
        text: str,
    ) -> bytes | None:
        if request.kind is wire.CallKind.CAST:
            return None
        try:
            body = wire.encode(wire.ErrorReply(request.msg_id, kind, exc_type, message, text))[1]
        except TypeError:
            # A message that is not valid Unicode (e.g. an undecodable file
            # name): send it escaped rather than leave the caller waiting.
            body = wire.encode(
                wire.ErrorReply(request.msg_id, kind, exc_type, _escape(message), _escape(text))
            )[1]
        if len(body) > self._max_size:
            body = wire.encode(
                wire.ErrorReply(request.msg_id, kind, exc_type, _escape(message)[:1000], "")
            )[1]
        return body

    def _resolve(self, request: wire.Request) -> Callable[..., Any]:
        target = self._target
        if (
            request.topic != target.topic
            or request.exchange != target.exchange_name
            or (request.server is not None and request.server != target.server)
        ):
            raise _Failure(
                wire.ErrorKind.NOT_SERVED,
                "zmqactors.errors.NoRespondersError",
                f"{target} does not serve {request.exchange}/{request.topic}"
                f" server={request.server}",
            )
        name = request.method
        if not name.isidentifier() or name.startswith("_"):
            raise _Failure(
                wire.ErrorKind.NO_SUCH_METHOD,
                "zmqactors.errors.NoSuchMethod",
                f"{name!r} is not a public method name",
            )
        found_in_namespace = False
        for endpoint, method in self._methods.get(name, ()):
            ep_target = getattr(endpoint, "target", None)
            if getattr(ep_target, "namespace", None) != request.namespace:
                continue
            found_in_namespace = True
            if version_compatible(getattr(ep_target, "version", None), request.version):
                return method
        if found_in_namespace:
            raise _Failure(
                wire.ErrorKind.UNSUPPORTED_VERSION,
                "zmqactors.errors.UnsupportedVersion",
                f"no endpoint serves {name!r} at version {request.version}",
            )
        where = f" in namespace {request.namespace!r}" if request.namespace else ""
        raise _Failure(
            wire.ErrorKind.NO_SUCH_METHOD,
            "zmqactors.errors.NoSuchMethod",
            f"no endpoint has a method {name!r}{where}",
        )

    def _traced_invoke(
        self, method: Callable[..., Any], request: wire.Request, *, call: bool
    ) -> Any:
        tracer = self._tracer
        if tracer is None or not request.trace:
            return self._invoke(method, request)
        with tracer.served(request.trace, request.topic, request.method, call=call):
            return self._invoke(method, request)

    def _invoke(self, method: Callable[..., Any], request: wire.Request) -> Any:
        # request_context_set, inlined: a generator context manager costs 1.3 µs a call.
        token = _request_context.set(request.context)
        try:
            return method(**request.args)
        finally:
            _request_context.reset(token)
