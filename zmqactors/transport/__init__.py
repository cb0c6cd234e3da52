"""The public API: transports, RPC clients and servers, and the request context.

Also home to the process context (`context`), the sans-IO wire protocol
(`protocol`) and socket configuration (`sockets`).
"""

from zmqactors.transport._transport import Transport
from zmqactors.transport.dispatch import request_context
from zmqactors.transport.notify import NotificationListener, Notifier
from zmqactors.transport.notify_dispatch import NotificationFilter, NotificationResult
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
