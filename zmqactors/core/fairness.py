"""`FairQueues`: what a transport's servers have queued, and whose request runs next.

Pure bookkeeping, no I/O: the poller (`zmqactors.actors.poller`) drives it
from its own thread. Every server of a transport shares one pool of
workers; inside, each server has one FIFO per client (the ROUTER routing
id of the connection a request came on), and:

- servers with queued work are served in turn (round robin), each at most
  ``cap`` requests at once (its own ``executor_size``), so a busy server
  cannot take every worker of the pool;
- inside a server, clients with queued work are served in turn, so one
  client's backlog delays another client's request by at most one request
  per client ahead of it, never by the whole backlog;
- while a server has ``k`` clients, no client runs more than
  ``max(1, cap - (k - 1))`` of its requests at once, a worker kept free
  for each other client: a worker, once busy, is not preempted, so without
  this reserve greedy clients holding every worker make another client's
  call wait for one of their (possibly slow) calls to end. A client counts
  from its first request until ``linger`` seconds after it last had
  nothing queued or running (a client pacing its calls is
  between two calls most of the time); a client alone has every worker;
- `admit` says whether one more request fits: at most ``per_client``
  queued per client and server, at most ``max_bytes`` of bodies queued in
  the whole transport. The caller answers a request that does not fit
  (`zmqactors.errors.ServerBusyError` at its sender).

Times are the caller's ``time.monotonic()``, never decreasing: no clock is
read here, so tests drive it without waiting.
"""

from __future__ import annotations

import collections
import enum
from typing import Generic, TypeVar

__all__ = ["LINGER", "Admission", "FairQueues"]

_T = TypeVar("_T")

# How long a client keeps counting after its last request ended (seconds):
# long enough to cover a client that calls every few hundred milliseconds;
# what it costs is one worker of a server, only while one client alone has
# more than the others' share queued.
LINGER = 1.0


class Admission(enum.Enum):
    """Whether a request fits in the queues."""

    OK = "ok"
    CLIENT_FULL = "client"  # the client has ``per_client`` requests queued for this server
    BYTES_FULL = "bytes"  # the transport has ``max_bytes`` of requests queued


class _Server(Generic[_T]):
    """One server's queues: a FIFO per client, whose turn it is, who runs how many."""

    __slots__ = (
        "cap",
        "clients",
        "gone",
        "held",
        "limit",
        "linger",
        "per_client",
        "queued",
        "queues",
        "ring",
        "running",
        "running_by",
    )

    def __init__(self, cap: int, per_client: int, linger: float) -> None:
        self.cap = cap
        self.per_client = per_client
        self.linger = linger
        self.queues: dict[bytes, collections.deque[tuple[_T, int]]] = {}
        # Clients with queued work below the limit, in turn; those at it wait apart.
        self.ring: collections.deque[bytes] = collections.deque()
        self.held: dict[bytes, None] = {}
        self.running_by: dict[bytes, int] = {}
        # Clients with something queued or running, and those that had,
        # with when they stopped (oldest first), for ``linger`` seconds.
        self.clients = 0
        self.gone: dict[bytes, float] = {}
        # The most one client may run at once: ``cap`` alone, one less for
        # each other client that counts, never less than one.
        self.limit = cap
        self.queued = 0
        self.running = 0

    @property
    def ready(self) -> bool:
        """Whether a request of this server may start now."""
        return self.running < self.cap and bool(self.ring)

    def push(self, client: bytes, item: _T, size: int, now: float) -> None:
        # Hot path: a client alone touches two dicts more than before the
        # limit; `_share` runs only while the limit is lowered, or for a
        # client that was not counted within ``linger``.
        queue = self.queues.get(client)
        if queue is None:
            # The empty client is the poller's timer tick: served, never counted.
            if client and client not in self.running_by:
                self.clients += 1
                if self.gone.pop(client, None) is None:
                    self._share(now)  # one client more: the limit may fall
            if self.limit < self.cap:
                self._share(now)
            queue = self.queues[client] = collections.deque()
            if self.running_by.get(client, 0) < self.limit:
                self.ring.append(client)
            else:
                self.held[client] = None
        elif self.limit < self.cap:
            self._share(now)
        queue.append((item, size))
        self.queued += 1

    def pop(self) -> tuple[bytes, _T, int]:
        ring = self.ring
        client = ring[0]
        queue = self.queues[client]
        item, size = queue.popleft()
        running = self.running_by[client] = self.running_by.get(client, 0) + 1
        self.running += 1
        self.queued -= 1
        if not queue:
            del self.queues[client]
            ring.popleft()
        elif running >= self.limit:
            ring.popleft()
            self.held[client] = None
        else:
            ring.rotate(-1)
        return client, item, size

    def done(self, client: bytes, now: float) -> None:
        self.running -= 1
        running = self.running_by.get(client, 0) - 1
        if running > 0:
            self.running_by[client] = running
        elif self.running_by.pop(client, None) is not None and client not in self.queues and client:
            self.clients -= 1
            self.gone[client] = now
        if client in self.held and running < self.limit:
            del self.held[client]
            self.ring.append(client)
        if self.limit < self.cap or len(self.gone) > 1:
            self._share(now)

    def drain(self) -> list[tuple[bytes, _T, int]]:
        """Everything queued, each client's in order; the queues emptied."""
        left = [(c, item, size) for c, queue in self.queues.items() for item, size in queue]
        self.queues.clear()
        self.ring.clear()
        self.held.clear()
        self.queued = 0
        return left

    def _share(self, now: float) -> None:
        """Forget clients gone for ``linger``; set the limit for how many clients count."""
        gone = self.gone
        while gone:
            client, since = next(iter(gone.items()))
            if now - since < self.linger:
                break
            del gone[client]
        # A worker kept free for each other client that counts.
        limit = max(1, self.cap + 1 - self.clients - len(gone))
        if limit == self.limit:
            return
        rose = limit > self.limit
        self.limit = limit
        if rose:
            for client in [c for c in self.held if self.running_by.get(c, 0) < limit]:
                del self.held[client]
                self.ring.append(client)
            return
        for client, running in self.running_by.items():
            if running >= limit and client in self.queues and client not in self.held:
                self.ring.remove(client)
                self.held[client] = None


class FairQueues(Generic[_T]):
    """Every server's queued requests; which one a free worker takes next. One thread.

    Servers are named by a key (the poller's server index); items are what
    the poller hands a worker, with their size in bytes for the total bound.
    """

    def __init__(self, max_bytes: int, linger: float = LINGER) -> None:
        self.max_bytes = max_bytes
        self.linger = linger
        self.queued_bytes = 0
        self.waiting = 0
        self._servers: dict[int, _Server[_T]] = {}
        # Servers whose request may start now, in the order they get served.
        self._ready: dict[int, None] = {}

    @property
    def runnable(self) -> bool:
        """Whether a request may start now (`pop` would find one): exact, not a hint."""
        return bool(self._ready)

    def add(self, key: int, cap: int, per_client: int) -> None:
        """A server starts: at most ``cap`` of its requests run at once."""
        self._servers[key] = _Server(cap, per_client, self.linger)

    def remove(self, key: int) -> list[tuple[bytes, _T]]:
        """Forget a server; what it still had queued, (client, item), each client's in order."""
        server = self._servers.pop(key, None)
        self._ready.pop(key, None)
        if server is None:
            return []
        left = server.drain()
        self.queued_bytes -= sum(size for _, _, size in left)
        self.waiting -= len(left)
        return [(client, item) for client, item, _ in left]

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

    def push(self, key: int, client: bytes, item: _T, size: int, now: float) -> None:
        """Queue ``item`` for server ``key``, arrived at ``now`` (whether it fits is `admit`'s)."""
        server = self._servers[key]
        server.push(client, item, size, now)
        self.queued_bytes += size
        self.waiting += 1
        if server.ready:
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
        self.queued_bytes -= size
        self.waiting -= 1
        if server.ready:
            ready[key] = None  # to the end of the ring: the other servers first
        return key, client, item

    def done(self, key: int, client: bytes, now: float) -> None:
        """``client``'s request for server ``key`` ended at ``now`` (removed server: no-op)."""
        server = self._servers.get(key)
        if server is None:
            return
        server.done(client, now)
        if server.ready:
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
