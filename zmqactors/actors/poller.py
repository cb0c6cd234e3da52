"""The poller: every server-side network socket of a transport, and the way to its workers.

One poller per transport (per process). For each running server it owns two
sockets, both created, used and closed in its thread:

- the network ROUTER that clients' DEALERs connect to;
- an inproc ROUTER that the server's worker actors connect to.

It gives each worker one request at a time (under load, as many as it
serves in a millisecond), bringing in only as many workers as the load
needs (`zmqactors.core.balance.Balancer`), queues requests meanwhile, and writes each reply back on
the network socket. A worker announces itself
with an empty message and answers every request (an empty body for a cast). It
decodes nothing but the header frame: workers decode bodies in their own
threads, so a malformed body can neither slow nor kill the poller.
"""

from __future__ import annotations

import collections
import errno
import time
from typing import TYPE_CHECKING, assert_never

import zmq
from zmq.utils.monitor import parse_monitor_message

from zmqactors import wire
from zmqactors._addresses import advertised_endpoint, is_loopback_endpoint, tcp_endpoint
from zmqactors.actors.base import SocketActor
from zmqactors.actors.frames import send_frames
from zmqactors.actors.messages import (
    AddServer,
    DrainServer,
    PollerMessage,
    RemoveServer,
    SendReply,
)
from zmqactors.core.balance import Balancer
from zmqactors.core.refusals import REFUSAL_LOG_INTERVAL, RefusalLog
from zmqactors.core.waiter import settle
from zmqactors.errors import ConfigurationError, ProtocolError, SecurityError
from zmqactors.net import security, zap
from zmqactors.net.context import get_context
from zmqactors.net.sockets import inproc_socket, network_socket
from zmqactors.options import GROUP_NAME

if TYPE_CHECKING:
    from concurrent.futures import Future

    from zmqactors.core.stats import Stats
    from zmqactors.options import Settings
    from zmqactors.topics import Target

__all__ = ["Poller"]

# A worker whose request started less than this ago is "fast": the next
# request waits for it rather than wake another thread (see Balancer).
FAST_WORKER = 0.001
# While every worker is full, at most this many requests wait in the poller;
# beyond that it stops reading the network socket and ZeroMQ's high-water
# marks push back on the senders.
_BACKLOG_LIMIT = 1000


class _Served:
    """The poller's state for one running server."""

    def __init__(self, server_id: str, target: Target, router: zmq.Socket[bytes]) -> None:
        self.server_id = server_id
        self.target = target
        self.router = router
        self.backend: zmq.Socket[bytes] | None = None
        # With CURVE: the router's monitor, which reports refused handshakes.
        self.monitor: zmq.Socket[bytes] | None = None
        self.balancer = Balancer(FAST_WORKER)
        self.backlog: collections.deque[tuple[bytes, bytes]] = collections.deque()
        self.paused = False
        self.draining = False
        self.drained: list[Future[None]] = []


class Poller(SocketActor):
    """Owns servers' inbound sockets; routes requests to workers and replies back."""

    actor_name = "poller"

    def __init__(self, settings: Settings, stats: Stats) -> None:
        super().__init__()
        self._settings = settings
        self._stats = stats
        # Refused handshakes, logged one line per server and reason per interval.
        self._refusals = RefusalLog(REFUSAL_LOG_INTERVAL)
        # Whether this transport warned of a plain-text server on the network.
        self._warned_plain = False
        self._servers: dict[str, _Served] = {}

    def on_receive(self, message: PollerMessage) -> str | None:
        """Handle one inbox message (actor thread)."""
        match message:
            case AddServer():
                return self._add(message)
            case DrainServer():
                self._start_draining(message.server_id, message.future)
                return None
            case RemoveServer():
                self._remove(message.server_id)
                return None
            case SendReply(server_id, client, body):
                served = self._servers.get(server_id)
                if served is None:
                    self._stats.incr("undeliverable_replies")
                else:
                    self._reply(served, client, body)
                return None
            case _:
                assert_never(message)

    # -- servers ------------------------------------------------------------

    def _add(self, message: AddServer) -> str:
        settings = self._settings
        context = get_context()
        router = network_socket(context, zmq.ROUTER, settings)
        # Report replies to vanished clients as errors instead of dropping them silently.
        router.setsockopt(zmq.ROUTER_MANDATORY, 1)
        monitor = None
        try:
            if message.curve is not None:
                security.configure_server(router, message.curve)
                monitor = router.get_monitor_socket(security.HANDSHAKE_FAILURES)
                # Checked again right before binding: without a ZAP handler
                # libzmq would let every CURVE client in.
                zap.require_authenticator()
            bound = self._bind(router)
        except SecurityError:
            _close_router(router, monitor)
            raise
        except zmq.ZMQError as exc:
            _close_router(router, monitor)
            msg = (
                f"option {GROUP_NAME}.bind_address: cannot bind a server socket on "
                f"{settings.bind_address!r} (ports {settings.port_min}-{settings.port_max}): "
                f"{_bind_error(exc)}"
            )
            raise ConfigurationError(msg) from None
        served = _Served(message.server_id, message.target, router)
        if monitor is not None:
            served.monitor = monitor
            self.watch(monitor, lambda frames: self._on_handshake_failed(served, frames))
        backend = inproc_socket(context, zmq.ROUTER)
        backend.bind(message.backend_address)
        served.backend = backend
        self._servers[message.server_id] = served
        self.watch(router, lambda frames: self._on_request(served, frames))
        # [worker, client, body]: our own workers, which always send two frames.
        self.watch(backend, lambda frames: self._on_worker(served, frames), frames=3)
        address = advertised_endpoint(bound, settings.host)
        if message.curve is None and not self._warned_plain and not is_loopback_endpoint(bound):
            self._warned_plain = True
            self.log.warning(
                "server bound beyond loopback without CURVE: anyone who can reach it "
                "may call it and read its traffic (set curve_secret_key_file and "
                "curve_public_keys_dir)",
                address=address,
                bind_address=settings.bind_address,
                target=str(message.target),
            )
        self.log.info(
            "server bound",
            target=str(message.target),
            address=address,
            curve=message.curve is not None,
        )
        return address

    def _on_handshake_failed(self, served: _Served, frames: list[bytes]) -> None:
        """A client was refused: its key is not allowed, it does not speak CURVE, or no ZAP.

        Counted each time, logged once per server and reason per interval
        (`RefusalLog`): a client retrying in a loop must not flood the log.
        """
        event = parse_monitor_message(frames)
        self._stats.incr("auth_rejections")
        kind = event["event"]
        zap_running = zap.authenticator_running()
        if not zap_running:
            # ZAP_ENFORCE_DOMAIN: without an authenticator libzmq refuses everyone.
            reason = "the ZAP authenticator is not running: every CURVE client is refused"
        elif kind == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
            reason = "key not on the allow-list"
        elif kind == zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL:
            reason = "no CURVE, or a broken handshake"
        else:
            reason = "handshake failed (a client without CURVE?)"
        target = str(served.target)
        line = self._refusals.refused(f"{target} {reason}", time.monotonic())
        if line is None:
            return
        log = self.log.warning if zap_running else self.log.error
        log(
            "refused a client",
            target=target,
            reason=reason,
            code=int(event["value"]),
            count=line[1],
            interval=REFUSAL_LOG_INTERVAL,
        )

    def _bind(self, router: zmq.Socket[bytes]) -> str:
        """Bind ``router`` as the settings say; the endpoint libzmq bound (``LAST_ENDPOINT``)."""
        settings = self._settings
        if settings.port_min == 0:
            router.bind(tcp_endpoint(settings.bind_address, 0))
        else:
            router.bind_to_random_port(
                tcp_endpoint(settings.bind_address),
                settings.port_min,
                settings.port_max + 1,
                max_tries=1000,
            )
        endpoint = router.getsockopt(zmq.LAST_ENDPOINT)
        assert isinstance(endpoint, bytes)  # noqa: S101 - LAST_ENDPOINT is a bytes option
        return endpoint.decode()

    def _start_draining(self, server_id: str, future: Future[None]) -> None:
        served = self._servers.get(server_id)
        if served is None:
            settle(future)
            return
        served.draining = True
        served.drained.append(future)
        self._check_drained(served)

    def _check_drained(self, served: _Served) -> None:
        if served.draining and served.balancer.in_progress == 0 and not served.backlog:
            for future in served.drained:
                settle(future)
            served.drained.clear()

    def _remove(self, server_id: str) -> None:
        served = self._servers.pop(server_id, None)
        if served is None:
            return
        if served.monitor is not None:
            self.unwatch(served.monitor)
        for sock in (served.router, served.backend):
            if sock is not None:
                self.unwatch(sock)
        _close_router(served.router, served.monitor)
        if served.backend is not None:
            served.backend.close()
        for future in served.drained:
            settle(future)

    # -- traffic ------------------------------------------------------------

    def _on_request(self, served: _Served, frames: list[bytes]) -> None:
        if len(frames) != 4:  # noqa: PLR2004 - client identity, header, destination, body
            self._stats.incr("protocol_errors")
            self.log.warning("dropped a request", reason=f"{len(frames)} frames, expected 4")
            return
        client, header, _dest, body = frames
        try:
            wire.check_header(header)
        except ProtocolError as exc:
            self._stats.incr("protocol_errors")
            self.log.warning("dropped a request", reason=str(exc))
            return
        if served.draining:
            self._refuse_stopping(served, client, body)
            return
        served.backlog.append((client, body))
        self._pump(served)
        if len(served.backlog) >= _BACKLOG_LIMIT and not served.paused:
            served.paused = True
            self.unwatch(served.router)

    def _send_to(self, served: _Served, worker: bytes, client: bytes, body: bytes) -> None:
        assert served.backend is not None  # noqa: S101 - set in _add
        send_frames(served.backend, (worker, client, body))

    def _on_worker(self, served: _Served, frames: list[bytes]) -> None:
        worker, client, body = frames
        balancer = served.balancer
        if balancer.known(worker):
            balancer.done(worker, time.monotonic())
        else:
            balancer.add(worker)
        if body:
            self._reply(served, client, body)
        self._pump(served)
        self._check_drained(served)

    def _pump(self, served: _Served) -> None:
        """Hand queued requests to workers while the balancer finds one."""
        backlog = served.backlog
        if not backlog:
            return
        balancer = served.balancer
        now = time.monotonic()
        while backlog:
            worker = balancer.take(now, len(backlog))
            if worker is None:
                break
            client, body = backlog.popleft()
            self._send_to(served, worker, client, body)
        if served.paused and len(backlog) < _BACKLOG_LIMIT // 2:
            served.paused = False
            self.watch(served.router, lambda f: self._on_request(served, f))

    def next_deadline(self) -> float | None:
        """When a server's queued requests should be looked at again."""
        times = [
            s.balancer.wake_at
            for s in self._servers.values()
            if s.backlog and s.balancer.wake_at is not None
        ]
        return min(times) if times else None

    def on_deadline(self, now: float) -> None:  # noqa: ARG002 - each pump reads the clock
        """A worker may have stopped being fast: hand its queue to others."""
        for served in list(self._servers.values()):
            self._pump(served)

    def _reply(self, served: _Served, client: bytes, body: bytes) -> None:
        try:
            send_frames(served.router, (client, wire.HEADER, body), block=False)
        except zmq.ZMQError as exc:
            # The client went away (EHOSTUNREACH) or stopped reading (EAGAIN).
            self._stats.incr("undeliverable_replies")
            self.log.info("reply not delivered", target=str(served.target), error=str(exc))

    def _refuse_stopping(self, served: _Served, client: bytes, body: bytes) -> None:
        self._stats.incr("rejected_stopping")
        try:
            request = wire.decode_body(body, self._settings.max_message_size)
        except ProtocolError:
            self._stats.incr("protocol_errors")
            return
        if isinstance(request, wire.Request) and request.kind is wire.CallKind.CALL:
            reply = wire.ErrorReply(
                request.msg_id,
                wire.ErrorKind.STOPPING,
                "zmqactors.errors.NoRespondersError",
                f"server {served.target.server} of {served.target.topic} is stopping",
            )
            self._reply(served, client, wire.encode(reply)[1])

    # -- life cycle ---------------------------------------------------------

    def fail_pending(self, error: Exception) -> None:  # noqa: ARG002 - nothing to fail, only to release
        """Release every drain waiter: nothing will be served any more."""
        for served in self._servers.values():
            for future in served.drained:
                settle(future)

    def close_sockets(self) -> None:
        """Close every server's sockets."""
        for served in self._servers.values():
            _close_router(served.router, served.monitor)
            if served.backend is not None:
                served.backend.close()
        self._servers.clear()


def _bind_error(exc: zmq.ZMQError) -> str:
    # libzmq says "No such device" for a name it could neither resolve nor
    # find as an interface: say that in words a user can act on.
    if exc.errno == errno.ENODEV:
        return "not an address of this host, a host name that resolves, nor a network interface"
    return str(exc)


def _close_router(router: zmq.Socket[bytes], monitor: zmq.Socket[bytes] | None) -> None:
    if monitor is not None:
        router.disable_monitor()
        monitor.close(linger=0)
    router.close()
