"""One pykka actor per socket role, one file each.

- `poller.Poller`: servers' network sockets; routes requests to listeners.
- `listener.Listener`: one executor thread of a server; calls endpoints.
- `reply_waiter.ReplyWaiter`: a client's sockets, pending calls and deadlines.
- `matchmaker.MatchmakerActor`: the discovery backend, registrations, route cache.

`base.SocketActor` is what they share: a pykka inbox that is polled together
with the actor's own sockets.
"""

__all__: list[str] = []
