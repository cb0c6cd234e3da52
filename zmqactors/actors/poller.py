"""The poller: every server-side network socket of a transport, and the way to its listeners.

One poller per transport (per process). For each running server it owns two
sockets, both created, used and closed in its thread:

- the network ROUTER that clients' DEALERs connect to;
- an inproc ROUTER that the server's listener actors connect to.

It forwards each request to an idle listener (the load-balancing pattern of
the ZeroMQ guide: a listener is idle from its first empty message until it is
given work, and again after each answer), queues requests while all
listeners are busy, and writes each reply back on the network socket. It
decodes nothing but the header frame: listeners decode bodies in their own
threads, so a malformed body can neither slow nor kill the poller.
"""

from __future__ import annotations

import collections
from typing import TYPE_CHECKING, assert_never

import zmq

from zmqactors.actors.base import SocketActor
from zmqactors.actors.messages import AddServer, DrainServer, PollerMessage, RemoveServer
from zmqactors.actors.reply_waiter import settle
from zmqactors.errors import ConfigurationError, ProtocolError
from zmqactors.transport import protocol
from zmqactors.transport.context import get_context
from zmqactors.transport.sockets import inproc_socket, network_socket

if TYPE_CHECKING:
    from concurrent.futures import Future

    from zmqactors.actors.stats import Stats
    from zmqactors.options import Settings
    from zmqactors.topics import Target

__all__ = ["Poller"]

# While every listener is busy, at most this many requests wait in the poller;
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
        self.listeners: set[bytes] = set()
        self.idle: collections.deque[bytes] = collections.deque()
        self.backlog: collections.deque[tuple[bytes, bytes]] = collections.deque()
        self.busy = 0
        self.paused = False
        self.draining = False
        self.drained: list[Future[None]] = []


class Poller(SocketActor):
    """Owns servers' inbound sockets; routes requests to listeners and replies back."""

    actor_name = "poller"

    def __init__(self, settings: Settings, stats: Stats) -> None:
        super().__init__()
        self._settings = settings
        self._stats = stats
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
            case _:
                assert_never(message)

    # -- servers ------------------------------------------------------------

    def _add(self, message: AddServer) -> str:
        settings = self._settings
        context = get_context()
        router = network_socket(context, zmq.ROUTER, settings)
        # Report replies to vanished clients as errors instead of dropping them silently.
        router.setsockopt(zmq.ROUTER_MANDATORY, 1)
        try:
            port = self._bind(router)
        except zmq.ZMQError as exc:
            router.close()
            msg = (
                f"cannot bind a server socket on {settings.bind_address!r} "
                f"(ports {settings.port_min}-{settings.port_max}): {exc}"
            )
            raise ConfigurationError(msg) from None
        served = _Served(message.server_id, message.target, router)
        backend = inproc_socket(context, zmq.ROUTER)
        backend.bind(message.backend_address)
        served.backend = backend
        self._servers[message.server_id] = served
        self.watch(router, lambda frames: self._on_request(served, frames))
        self.watch(backend, lambda frames: self._on_listener(served, frames))
        address = f"tcp://{settings.advertised_host}:{port}"
        self.log.info("server bound", target=str(message.target), address=address)
        return address

    def _bind(self, router: zmq.Socket[bytes]) -> int:
        settings = self._settings
        host = settings.bind_address
        if settings.port_min == 0:
            router.bind(f"tcp://{host}:0" if host != "*" else "tcp://*:0")
            endpoint = router.getsockopt(zmq.LAST_ENDPOINT)
            assert isinstance(endpoint, bytes)  # noqa: S101 - LAST_ENDPOINT is a bytes option
            return int(endpoint.rsplit(b":", 1)[1])
        return router.bind_to_random_port(
            f"tcp://{host}", settings.port_min, settings.port_max + 1, max_tries=1000
        )

    def _start_draining(self, server_id: str, future: Future[None]) -> None:
        served = self._servers.get(server_id)
        if served is None:
            settle(future)
            return
        served.draining = True
        served.drained.append(future)
        self._check_drained(served)

    def _check_drained(self, served: _Served) -> None:
        if served.draining and served.busy == 0 and not served.backlog:
            for future in served.drained:
                settle(future)
            served.drained.clear()

    def _remove(self, server_id: str) -> None:
        served = self._servers.pop(server_id, None)
        if served is None:
            return
        for sock in (served.router, served.backend):
            if sock is not None:
                self.unwatch(sock)
                sock.close()
        for future in served.drained:
            settle(future)

    # -- traffic ------------------------------------------------------------

    def _on_request(self, served: _Served, frames: list[bytes]) -> None:
        if len(frames) != 3:  # noqa: PLR2004 - client identity, header, body
            self._stats.incr("protocol_errors")
            self.log.warning("dropped a request", reason=f"{len(frames)} frames, expected 3")
            return
        client, header, body = frames
        try:
            protocol.check_header(header)
        except ProtocolError as exc:
            self._stats.incr("protocol_errors")
            self.log.warning("dropped a request", reason=str(exc))
            return
        if served.draining:
            self._refuse_stopping(served, client, body)
            return
        if served.idle:
            self._dispatch(served, served.idle.popleft(), client, body)
            return
        served.backlog.append((client, body))
        if len(served.backlog) >= _BACKLOG_LIMIT and not served.paused:
            served.paused = True
            self.unwatch(served.router)

    def _dispatch(self, served: _Served, listener: bytes, client: bytes, body: bytes) -> None:
        assert served.backend is not None  # noqa: S101 - set in _add
        served.busy += 1
        served.backend.send_multipart((listener, client, body))

    def _on_listener(self, served: _Served, frames: list[bytes]) -> None:
        listener, client, body = frames
        if listener in served.listeners:
            served.busy -= 1
        else:
            served.listeners.add(listener)
        if body:
            self._reply(served, client, body)
        if served.backlog:
            next_client, next_body = served.backlog.popleft()
            self._dispatch(served, listener, next_client, next_body)
            if served.paused and len(served.backlog) < _BACKLOG_LIMIT // 2:
                served.paused = False
                self.watch(served.router, lambda f: self._on_request(served, f))
        else:
            served.idle.append(listener)
        self._check_drained(served)

    def _reply(self, served: _Served, client: bytes, body: bytes) -> None:
        try:
            served.router.send_multipart((client, protocol.HEADER, body), zmq.NOBLOCK)
        except zmq.ZMQError as exc:
            # The client went away (EHOSTUNREACH) or stopped reading (EAGAIN).
            self._stats.incr("undeliverable_replies")
            self.log.info("reply not delivered", target=str(served.target), error=str(exc))

    def _refuse_stopping(self, served: _Served, client: bytes, body: bytes) -> None:
        self._stats.incr("rejected_stopping")
        try:
            request = protocol.decode_body(body, self._settings.max_message_size)
        except ProtocolError:
            self._stats.incr("protocol_errors")
            return
        if isinstance(request, protocol.Request) and request.kind is protocol.CallKind.CALL:
            reply = protocol.ErrorReply(
                request.msg_id,
                protocol.ErrorKind.STOPPING,
                "zmqactors.errors.NoRespondersError",
                f"server {served.target.server} of {served.target.topic} is stopping",
            )
            self._reply(served, client, protocol.encode(reply)[1])

    # -- life cycle ---------------------------------------------------------

    def fail_pending(self, error: Exception) -> None:  # noqa: ARG002 - nothing to fail, only to release
        """Release every drain waiter: nothing will be served any more."""
        for served in self._servers.values():
            for future in served.drained:
                settle(future)

    def close_sockets(self) -> None:
        """Close every server's sockets."""
        for served in self._servers.values():
            served.router.close()
            if served.backend is not None:
                served.backend.close()
        self._servers.clear()
