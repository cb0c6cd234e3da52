"""The exception tree of zmqactors.

::

    MessagingError                 base of everything raised here
    ├── MessagingTimeout           no reply before the call's deadline
    ├── NoRespondersError          nothing is registered for the target
    ├── ServerBusyError            the server's queues for this client are full (retry later)
    ├── ResourceLimitError         a process or ZeroMQ limit was reached (names it and its option)
    ├── RemoteError                the server's endpoint raised
    │   ├── NoSuchMethod           the endpoint has no such public method
    │   └── UnsupportedVersion     no endpoint serves the requested version
    ├── ProtocolError              frames that are not valid zmqactors messages
    ├── ConfigurationError         bad options or transport URL (also a ValueError)
    ├── SecurityError              security is configured but cannot be enforced
    └── TransportClosedError            the transport (or the actor behind a call) stopped

Every error raised for a user mistake says what was wrong and with which value.
"""

from __future__ import annotations

__all__ = [
    "ConfigurationError",
    "MessagingError",
    "MessagingTimeout",
    "NoRespondersError",
    "NoSuchMethod",
    "ProtocolError",
    "RemoteError",
    "ResourceLimitError",
    "SecurityError",
    "ServerBusyError",
    "TransportClosedError",
    "UnsupportedVersion",
]


class MessagingError(Exception):
    """Base class of every exception raised by zmqactors."""


class MessagingTimeout(MessagingError):  # noqa: N818 - the name is the public contract
    """No reply arrived before the call's deadline."""


class NoRespondersError(MessagingError):
    """Nothing is registered for the target: raised at once, without waiting."""


class ServerBusyError(MessagingError):
    """The server refused the request unrun: its queue for this client, or its total, is full.

    Nothing ran; the caller may retry later or elsewhere.
    """


class ResourceLimitError(MessagingError):
    """A limit of the process or of ZeroMQ was reached; the message names it and its option."""


class RemoteError(MessagingError):
    """The server's endpoint raised; carries its exception type, message and traceback.

    ``exc_type`` is the qualified class name (``module.Class``), ``value`` the
    exception's message and ``traceback`` the server's formatted traceback text.
    """

    def __init__(self, exc_type: str, value: str, traceback: str = "") -> None:
        self.exc_type = exc_type
        self.value = value
        self.traceback = traceback
        super().__init__(f"{exc_type}: {value}")


class NoSuchMethod(RemoteError):  # noqa: N818 - the name is the public contract
    """The server has no endpoint with that public method."""


class UnsupportedVersion(RemoteError):  # noqa: N818 - the name is the public contract
    """No endpoint of the server is compatible with the requested version."""


class ProtocolError(MessagingError):
    """Frames that are not a valid zmqactors message (malformed, oversized, wrong version)."""


class ConfigurationError(MessagingError, ValueError):
    """A bad option value or transport URL; the message names the option and value."""


class SecurityError(MessagingError):
    """Security is configured but cannot be enforced (fail closed)."""


class TransportClosedError(MessagingError):
    """The transport, or the actor that owned a pending call, has stopped."""
