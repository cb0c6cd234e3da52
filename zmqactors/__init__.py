"""zmqactors: actor-model messaging over ZeroMQ for threaded Python daemons.

RPC (call with reply and deadline, cast, fanout, direct to one server) and
service discovery, over one fork-safe ZeroMQ context per process, with no
eventlet. See README.md for a tour and ARCHITECTURE.md for how it works.
"""

from zmqactors.errors import (
    ConfigurationError,
    MessagingError,
    MessagingTimeout,
    NoRespondersError,
    NoSuchMethod,
    ProtocolError,
    RemoteError,
    SecurityError,
    TransportClosedError,
    UnsupportedVersion,
)
from zmqactors.topics import Target
from zmqactors.transport import (
    NotificationFilter,
    NotificationListener,
    NotificationResult,
    Notifier,
    RPCClient,
    RPCServer,
    Transport,
    request_context,
)

__version__ = "0.1.0"

__all__ = [
    "ConfigurationError",
    "MessagingError",
    "MessagingTimeout",
    "NoRespondersError",
    "NoSuchMethod",
    "NotificationFilter",
    "NotificationListener",
    "NotificationResult",
    "Notifier",
    "ProtocolError",
    "RPCClient",
    "RPCServer",
    "RemoteError",
    "SecurityError",
    "Target",
    "Transport",
    "TransportClosedError",
    "UnsupportedVersion",
    "__version__",
    "request_context",
]
