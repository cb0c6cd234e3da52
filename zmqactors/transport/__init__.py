"""The public API: transports, RPC clients and servers, notifications, the request context.

The layer above the actors: it starts them (`service`, `_transport`) and
talks to them; the process context lives in `zmqactors.net`, the wire codec in
`zmqactors.wire`, the pure logic in `zmqactors.core`.
"""

from zmqactors.core.dispatch import request_context
from zmqactors.core.notify_dispatch import NotificationFilter, NotificationResult
from zmqactors.transport._transport import Transport
from zmqactors.transport.notify import NotificationListener, Notifier
from zmqactors.transport.rpc import RPCClient, RPCServer

__all__ = [
    "NotificationFilter",
    "NotificationListener",
    "NotificationResult",
    "Notifier",
    "RPCClient",
    "RPCServer",
    "Transport",
    "request_context",
]
