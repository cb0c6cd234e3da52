"""Pure logic, no I/O: what the actors and the API decide, testable without sockets.

Imports neither zmq nor pykka (an import-linter contract in setup.cfg checks it).

- `dispatch`: a request to an endpoint method and back to a reply body.
- `notify_dispatch`: notifications to endpoints: priorities, filters, batches, requeues.
- `balance`: which of a server's workers takes the next request (the poller's choice).
- `dedup`: the message ids an acknowledged cast has run, for at-most-once.
- `waiter`: the blocking caller's one-shot result (cheaper than a Future).
- `window`: the send window, slots per server address between callers and sockets.
- `stats`: the transport's counters.
"""

__all__: list[str] = []
