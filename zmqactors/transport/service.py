"""`Service`: the life cycle shared by everything that serves (RPC servers, notification listeners).

A service joins the transport's network socket (the poller binds it for the
first one), has its `Handler` run by the transport's shared worker pool (at
most ``executor_size`` of its requests at once), and registers the socket's
address in the matchmaker under one or more keys. `start` returns once it is
bound and registered; `stop` unregisters and takes no new requests; `wait`
lets the requests already taken finish, then releases everything.

A service inherited through ``fork()`` is not running in the child: there
its state is ``new``, `stop`/`wait` do nothing, and `start` starts it afresh
in the child (the child's socket and workers, a new registration).
"""

from __future__ import annotations

import concurrent.futures
import enum
import os
import threading
import weakref
from collections.abc import Sequence
from typing import TYPE_CHECKING, Self

import pykka
import structlog

from zmqactors import wire
from zmqactors.errors import MessagingError, MessagingTimeout, TransportClosedError
from zmqactors.net import security
from zmqactors.net.context import on_fork_child

if TYPE_CHECKING:
    from collections.abc import Mapping
    from types import TracebackType

    from zmqactors.core.handler import Handler
    from zmqactors.core.stats import ServerStats
    from zmqactors.topics import Target
    from zmqactors.transport.runtime import Host, Runtime

__all__ = ["Service", "check_endpoints", "check_executor_size"]

_log = structlog.get_logger("zmqactors.service")

_MAX_EXECUTOR = 1024


class _State(enum.Enum):
    NEW = "new"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"


def check_endpoints(endpoints: object, kind: str) -> tuple[object, ...]:
    """``endpoints`` as a tuple; raises ``TypeError``/``ValueError`` naming the problem."""
    if isinstance(endpoints, str | bytes) or not isinstance(endpoints, Sequence):
        msg = f"endpoints must be a sequence of objects, got {type(endpoints).__name__}"
        raise TypeError(msg)
    if not endpoints:
        msg = f"a {kind} needs at least one endpoint"
        raise ValueError(msg)
    return tuple(endpoints)


def check_executor_size(size: object) -> int:
    """``size`` if it is a valid executor size, else ``ValueError`` naming it."""
    if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= _MAX_EXECUTOR:
        msg = f"invalid executor_size {size!r}: an integer from 1 to {_MAX_EXECUTOR} is required"
        raise ValueError(msg)
    return size


class Service:
    """Bind, listen, register; stop, drain, release. Subclasses say what and where.

    Subclasses implement `_handler` (what the workers run) and
    `_registrations` (the matchmaker keys and server name to register under).
    All methods may be called from any thread.
    """

    def __init__(self, transport: Host, label: Target, executor_size: int) -> None:
        self.transport = transport
        self.executor_size = check_executor_size(executor_size)
        self._label = label
        # Re-entrant: a signal handler calling transport.close() runs _abort
        # on the thread that may be inside start()/stop() holding it.
        self._lock = threading.RLock()
        self._state = _State.NEW
        self._pid = 0
        self._server_id = ""
        self._address = ""
        self._server_key: str | None = None
        self._registered: list[tuple[str, str, str, str | None]] = []
        self._drained: concurrent.futures.Future[None] | None = None
        self._log = _log.bind(target=str(label))
        _services.add(self)

    # -- for subclasses -----------------------------------------------------

    def _handler(self) -> Handler:
        """The handler the workers run (one per service: it must be thread-safe)."""
        raise NotImplementedError

    def _registrations(self) -> list[tuple[str, str]]:
        """The (matchmaker key, server name) pairs to register the address under."""
        raise NotImplementedError

    # Whether the handler has timers (`Handler.next_deadline`) to run.
    _timers = False

    # -- state --------------------------------------------------------------

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._label} {self.state}>"

    @property
    def state(self) -> str:
        """``new``, ``running``, ``stopping`` or ``stopped`` (in this process)."""
        return self._state.value if self._owned() else _State.NEW.value

    @property
    def address(self) -> str:
        """The advertised address, e.g. ``tcp://127.0.0.1:40123`` (empty until started)."""
        return self._address if self._owned() else ""

    @property
    def server_key(self) -> str | None:
        """The CURVE public key it serves with and advertises (None: no CURVE, or not started)."""
        return self._server_key if self._owned() else None

    @property
    def destination(self) -> bytes:
        """The destination (`wire.destination`) of messages for this service."""
        key, server = self._registrations()[0]
        return wire.destination(key, server)

    def metrics(self) -> tuple[Mapping[str, str], ServerStats] | None:
        """Labels and counters for the metrics (`RPCServer` has them; others: None)."""
        return None

    def _owned(self) -> bool:
        return self._pid == os.getpid()

    # -- life cycle ---------------------------------------------------------

    def start(self) -> None:
        """Join the transport's socket and workers, register; returns when requests can reach it.

        Raises `ConfigurationError` if the socket cannot be bound,
        `ResourceLimitError` if it or a worker cannot be opened for lack of
        file descriptors, `SecurityError`
        if CURVE is configured but cannot be enforced (see
        `zmqactors.net.security.prepare_server`; nothing is bound then),
        `MessagingError` if the matchmaker refuses the registration,
        `TransportClosedError`. Starting a running service does nothing.
        """
        with self._lock:
            if self._owned() and self._state is _State.RUNNING:
                return
            self._start()

    def _start(self) -> None:
        transport = self.transport
        # Fail closed before anything is bound or started.
        curve = security.prepare_server(transport.settings)
        runtime = transport.runtime(serving=True)
        server_id = transport.next_id()
        self._pid = os.getpid()
        self._server_id = server_id
        self._registered = []
        self._server_key = None if curve is None else curve.public_key
        destinations = tuple(wire.destination(key, name) for key, name in self._registrations())
        self._address = runtime.add_server(
            server_id,
            self._label,
            destinations,
            self.executor_size,
            self._handler(),
            self._timers,
            curve,
        )
        try:
            for key, server in self._registrations():
                registration = (key, server, self._address, self._server_key)
                runtime.register(*registration)
                self._registered.append(registration)
        except Exception as exc:
            self._unregister()
            self._release(runtime)
            if isinstance(exc, pykka.ActorDeadError):
                raise _closed() from None
            msg = f"cannot register {self._label}: {exc}"
            raise MessagingError(msg) from exc
        self._state = _State.RUNNING
        transport.track(self)
        self._log.info("service started", address=self._address, executor_size=self.executor_size)

    def stop(self) -> None:
        """Unregister and take no new requests; idempotent.

        Returns once the poller has stopped taking requests for this service
        (a request that arrives later is refused), without waiting for those
        in progress: `wait` does that.

        Does nothing on a service inherited through ``fork()`` and not started here.
        """
        with self._lock:
            if not self._owned() or self._state is not _State.RUNNING:
                return
            self._state = _State.STOPPING
            self._unregister()
            self._drained = concurrent.futures.Future()
            try:
                self.transport.runtime(serving=True).drain_server(self._server_id, self._drained)
            except (pykka.ActorDeadError, TransportClosedError):
                self._drained.set_result(None)
            except pykka.Timeout:
                # The poller is stuck; it drains when it gets to the message.
                self._log.warning("the poller did not confirm the stop in time")

    def _unregister(self) -> None:
        try:
            runtime = self.transport.runtime()
        except TransportClosedError:
            return
        for registration in self._registered:
            try:
                runtime.unregister(*registration)
            except (pykka.ActorDeadError, pykka.Timeout) as exc:
                self._log.warning("could not unregister", error=str(exc))
        self._registered = []

    def wait(self, timeout: float | None = None) -> None:
        """Wait until the requests taken before `stop` are done, then release everything.

        Raises `MessagingTimeout` if that takes longer than ``timeout`` seconds
        (the service stays stopping; call `wait` again).
        """
        with self._lock:
            if not self._owned() or self._state is not _State.STOPPING:
                return
            drained = self._drained
            assert drained is not None  # noqa: S101 - set by stop()
        try:
            drained.result(timeout=timeout)
        except concurrent.futures.TimeoutError:
            msg = f"{self._label} still has requests in progress after {timeout}s"
            raise MessagingTimeout(msg) from None
        with self._lock:
            if self._state is _State.STOPPING:
                try:
                    runtime: Runtime | None = self.transport.runtime()
                except TransportClosedError:
                    runtime = None
                self._release(runtime)
                self._state = _State.STOPPED
                self.transport.untrack(self)
                self._log.info("service stopped")

    def _release(self, runtime: Runtime | None) -> None:
        if runtime is not None:
            runtime.remove_server(self._server_id)

    def send_reply(self, client: bytes, body: bytes) -> None:
        """Send a reply (or heartbeat) body to ``client`` later, from any thread.

        For handlers that answer outside `Handler.handle` (the oslo.messaging
        driver). Raises `TransportClosedError` once the transport is closed.
        """
        self.transport.runtime(serving=True).send_reply(self._server_id, client, body)

    def abort(self) -> None:
        """The transport is closing: stop at once, without waiting (any thread)."""
        with self._lock:
            if not self._owned() or self._state in (_State.NEW, _State.STOPPED):
                return
            self._state = _State.STOPPED
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


def _closed() -> TransportClosedError:
    return TransportClosedError("the transport is closed")


_services: weakref.WeakSet[Service] = weakref.WeakSet()


def _reset_locks_in_child() -> None:
    # A parent thread inside start()/stop() at the fork held the lock; that
    # thread does not exist in the child, so the child's copy would stay held.
    for service in list(_services):
        service._lock = threading.RLock()  # noqa: SLF001 - the module's own fork hook


on_fork_child(_reset_locks_in_child)
