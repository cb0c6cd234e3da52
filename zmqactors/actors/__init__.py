"""One pykka actor per socket role, one file each.

- `poller.Poller`: servers' network sockets; routes requests to workers.
- `worker.Worker`: one executor thread of a server; calls endpoints.
- `reply_waiter.ReplyWaiter`: a client's sockets, pending calls and deadlines.
- `matchmaker.MatchmakerActor`: the discovery backend, registrations, route cache.

`base.SocketActor` is what they share: a pykka actor whose inbox
(`inbox.PollingInbox`) is polled together with the actor's own sockets and
its `doorbell.Doorbell`. `messages` holds what they send each other, `frames`
the cheap sends and receives on the hot path.
"""

__all__: list[str] = []
