"""`FairQueues`: what a transport's servers have queued, and whose request runs next.

Pure bookkeeping, no I/O: the poller (`zmqactors.actors.poller`) drives it
from its own thread. Every server of a transport shares one pool of
workers; inside, each server has one FIFO per client (the ROUTER routing id
of the connection a request came on), and:

- servers with queued work are served in turn (round robin), each at most
  ``cap`` requests at once (its own ``executor_size``), so a busy server
  cannot take every worker of the pool;
- inside a server, clients with queued work are served in turn, so one
  client's backlog delays another client's request by at most one request
  per client ahead of it, never by the whole backlog;
- `admit` says whether one more request fits: at most ``per_client``
  queued per client and server, at most ``max_bytes`` of bodies queued in
  the whole transport. The caller answers a request that does not fit
  (`zmqactors.errors.ServerBusyError` at its sender).
"""

from __future__ import annotations

import collections
import enum
from typing import Generic, TypeVar

__all__ = ["Admission", "FairQueues"]

_T = TypeVar("_T")


class Admission(enum.Enum):
    """Whether a request fits in the queues."""

    OK = "ok"
    CLIENT_FULL = "client"  # the client has ``per_client`` requests queued for this server
    BYTES_FULL = "bytes"  # the transport has ``max_bytes`` of requests queued


class _Server(Generic[_T]):
    """One server's queues: a FIFO per client and the ring of clients with work."""

    __slots__ = ("cap", "per_client", "queued", "queues", "ring", "running")

    def __init__(self, cap: int, per_client: int) -> None:
        self.cap = cap
        self.per_client = per_client
        self.queues: dict[bytes, collections.deque[tuple[_T, int]]] = {}
        self.ring: collections.deque[bytes] = collections.deque()
        self.queued = 0
        self.running = 0

    def push(self, client: bytes, item: _T, size: int) -> None:
        queue = self.queues.get(client)
        if queue is None:
            queue = self.queues[client] = collections.deque()
            self.ring.append(client)
        queue.append((item, size))
        self.queued += 1

    def pop(self) -> tuple[bytes, _T, int]:
        ring = self.ring
        client = ring[0]
        queue = self.queues[client]
        item, size = queue.popleft()
        if queue:
            ring.rotate(-1)
        else:
            del self.queues[client]
            ring.popleft()
        self.queued -= 1
        return client, item, size


class FairQueues(Generic[_T]):
    """Every server's queued requests; which one a free worker takes next. One thread.

    Servers are named by a key (the poller's server index); items are what
    the poller hands a worker, with their size in bytes for the total bound.
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.queued_bytes = 0
        self.waiting = 0
        self._servers: dict[int, _Server[_T]] = {}
        # Servers with queued work and a free slot, in the order they get served.
        self._ready: dict[int, None] = {}

    @property
    def runnable(self) -> bool:
        """Whether a server below its cap has queued work (`pop` would find some)."""
        return bool(self._ready)

    def add(self, key: int, cap: int, per_client: int) -> None:
        """A server starts: at most ``cap`` of its requests run at once."""
        self._servers[key] = _Server(cap, per_client)

    def remove(self, key: int) -> list[tuple[bytes, _T]]:
        """Forget a server; what it still had queued, (client, item) in order."""
        server = self._servers.pop(key, None)
        self._ready.pop(key, None)
        if server is None:
            return []
        left = []
        while server.queued:
            client, item, size = server.pop()
            self.queued_bytes -= size
            self.waiting -= 1
            left.append((client, item))
        return left

    def admit(self, key: int, client: bytes, size: int) -> Admission:
        """Whether one more request of ``size`` bytes from ``client`` fits for server ``key``."""
        server = self._servers[key]
        queue = server.queues.get(client)
        if queue is not None and len(queue) >= server.per_client:
            return Admission.CLIENT_FULL
        if self.queued_bytes + size > self.max_bytes and self.waiting:
            # An empty transport takes any one request (the frame size bounds it).
            return Admission.BYTES_FULL
        return Admission.OK

    def push(self, key: int, client: bytes, item: _T, size: int) -> None:
        """Queue ``item`` for server ``key`` (whether it fits is `admit`'s to say)."""
        server = self._servers[key]
        server.push(client, item, size)
        self.queued_bytes += size
        self.waiting += 1
        if server.running < server.cap:
            self._ready[key] = None

    def pop(self) -> tuple[int, bytes, _T] | None:
        """The next request to run, (server key, client, item), counted running; None if none."""
        ready = self._ready
        if not ready:
            return None
        key = next(iter(ready))
        del ready[key]
        server = self._servers[key]
        client, item, size = server.pop()
        server.running += 1
        self.queued_bytes -= size
        self.waiting -= 1
        if server.queued and server.running < server.cap:
            ready[key] = None  # to the end of the ring: the other servers first
        return key, client, item

    def done(self, key: int) -> None:
        """A request of server ``key`` finished (a no-op for a server since removed)."""
        server = self._servers.get(key)
        if server is None:
            return
        server.running -= 1
        if server.queued and server.running < server.cap:
            self._ready[key] = None

    def idle(self, key: int) -> bool:
        """Whether server ``key`` has nothing queued and nothing running."""
        server = self._servers.get(key)
        return server is None or (server.queued == 0 and server.running == 0)

    def queued_for(self, key: int, client: bytes) -> int:
        """How many requests ``client`` has queued for server ``key``."""
        server = self._servers.get(key)
        if server is None:
            return 0
        queue = server.queues.get(client)
        return 0 if queue is None else len(queue)
