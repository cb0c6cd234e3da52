"""The public API: transports, RPC clients and servers, and the request context.

Also home to the process context (`context`), the sans-IO wire protocol
(`protocol`) and socket configuration (`sockets`).
"""

from zmqactors.transport._transport import Transport
from zmqactors.transport.dispatch import request_context
from zmqactors.transport.rpc import RPCClient, RPCServer

__all__ = ["RPCClient", "RPCServer", "Transport", "request_context"]
