"""zmqactors: actor-model messaging over ZeroMQ for threaded Python daemons.

RPC (call with reply and deadline, cast, fanout, direct to one server) and
service discovery, over one fork-safe ZeroMQ context per process, with no
eventlet. See README.md for a tour and ARCHITECTURE.md for how it works.

The public API is loaded lazily (PEP 562): ``import zmqactors.wire`` or
``import zmqactors.core`` imports neither zmq nor pykka; the first use of
``zmqactors.Transport`` (or any name below) imports the module that defines it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# The one place the version is written: setup.cfg reads it (``attr:``)
# statically, without running this file.
__version__ = "0.1.0"

if TYPE_CHECKING:
    from zmqactors.core.dispatch import expose
    from zmqactors.errors import (
        ConfigurationError,
        MessagingError,
        MessagingTimeout,
        NoRespondersError,
        NoSuchMethod,
        ProtocolError,
        RemoteError,
        ResourceLimitError,
        SecurityError,
        ServerBusyError,
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

# Public name -> the module that defines it.
_ERRORS = "zmqactors.errors"
_TRANSPORT = "zmqactors.transport"
_LAZY = {
    "ConfigurationError": _ERRORS,
    "MessagingError": _ERRORS,
    "MessagingTimeout": _ERRORS,
    "NoRespondersError": _ERRORS,
    "NoSuchMethod": _ERRORS,
    "ProtocolError": _ERRORS,
    "RemoteError": _ERRORS,
    "ResourceLimitError": _ERRORS,
    "SecurityError": _ERRORS,
    "ServerBusyError": _ERRORS,
    "TransportClosedError": _ERRORS,
    "UnsupportedVersion": _ERRORS,
    "Target": "zmqactors.topics",
    "NotificationFilter": _TRANSPORT,
    "NotificationListener": _TRANSPORT,
    "NotificationResult": _TRANSPORT,
    "Notifier": _TRANSPORT,
    "RPCClient": _TRANSPORT,
    "RPCServer": _TRANSPORT,
    "Transport": _TRANSPORT,
    "request_context": _TRANSPORT,
    # Pure: decorating endpoint classes imports neither zmq nor pykka.
    "expose": "zmqactors.core.dispatch",
}

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
    "ResourceLimitError",
    "SecurityError",
    "ServerBusyError",
    "Target",
    "Transport",
    "TransportClosedError",
    "UnsupportedVersion",
    "__version__",
    "expose",
    "request_context",
]


def __getattr__(name: str) -> Any:
    """Import the public name ``name`` on first use; ``AttributeError`` for any other."""
    module = _LAZY.get(name)
    if module is None:
        msg = f"module 'zmqactors' has no attribute {name!r}"
        raise AttributeError(msg)
    value = getattr(importlib.import_module(module), name)
    # Cached: later lookups are plain module attribute reads.
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
