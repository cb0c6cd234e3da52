"""The service API every RPC server answers: ``ping``, ``info`` and ``stats``.

Like NATS' ``$SRV.PING``/``$SRV.INFO``/``$SRV.STATS``: methods of a built-in
endpoint in the reserved namespace ``zmqactors`` (`SERVICE_NAMESPACE`),
added to each `RPCServer` unless the ``service_api`` option is off. A client
calls them as any method (``zmqactors ping/info/stats`` on the command line).
They tell a caller nothing the server's own methods do not: who answers, its
methods and their signatures, and its counters. With CURVE, only clients on
the server's allow-list reach them, as for every method.
"""

from __future__ import annotations

import inspect
import time
from typing import TYPE_CHECKING, Any

from zmqactors.core.dispatch import SERVICE_NAMESPACE, Exposure, expose, exposed_methods

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from zmqactors.core.stats import ServerStats

__all__ = ["SERVICE_NAMESPACE", "ServiceEndpoint", "describe_endpoints"]

SERVICE_VERSION = "1.0"
# The transport counters a server's ``stats`` reports beside its own: what
# it refused, dropped or could not deliver (absent ones read 0).
TRANSPORT_COUNTERS = (
    "auth_rejections",
    "busy_refused",
    "expired_dropped",
    "not_served",
    "protocol_errors",
    "rejected_stopping",
    "undeliverable_replies",
)


class _ServiceTarget:
    """What the dispatcher reads of an endpoint's target: its namespace and version."""

    namespace = SERVICE_NAMESPACE
    version = SERVICE_VERSION


def describe_endpoints(endpoints: Sequence[object], exposed: Exposure) -> list[dict[str, Any]]:
    """Each endpoint's class, namespace, version, and exposed methods with their signatures."""
    described = []
    for endpoint in endpoints:
        target = getattr(endpoint, "target", None)
        methods = exposed_methods(endpoint, exposed)
        described.append(
            {
                "class": f"{type(endpoint).__module__}.{type(endpoint).__qualname__}",
                "namespace": getattr(target, "namespace", None),
                "version": getattr(target, "version", None),
                "methods": {name: _signature(method) for name, method in sorted(methods.items())},
            }
        )
    return described


def _signature(method: Callable[..., Any]) -> str:
    try:
        return str(inspect.signature(method))
    except (TypeError, ValueError):
        return "(...)"


class ServiceEndpoint:
    """The built-in endpoint: ``ping``, ``info``, ``stats`` in namespace ``zmqactors``.

    ``describe()`` returns what `info` shows of the server (its name, topic,
    address, ... as its `Service` knows them once started); ``counters`` is
    the server dispatcher's `ServerStats`, bound after the dispatcher is
    built (`bind`); ``transport_counters()`` the transport's counters.
    """

    target = _ServiceTarget()

    def __init__(
        self,
        describe: Callable[[], dict[str, Any]],
        transport_counters: Callable[[], Mapping[str, int]],
    ) -> None:
        self._describe = describe
        self._transport_counters = transport_counters
        self._counters: ServerStats | None = None

    def bind(self, counters: ServerStats) -> None:
        """Report ``counters`` (the server's own) from `stats` and `info`."""
        self._counters = counters

    @expose
    def ping(self) -> dict[str, Any]:
        """Who answers, and the server's clock (the caller measures the round trip)."""
        info = self._describe()
        return {"server": info.get("server"), "topic": info.get("topic"), "time": time.time()}

    @expose
    def info(self) -> dict[str, Any]:
        """The server: name, topic, version, endpoints and methods, uptime, address, CURVE."""
        info = self._describe()
        if self._counters is not None:
            info["uptime"] = round(time.time() - self._counters.started, 3)
        return info

    @expose
    def stats(self) -> dict[str, Any]:
        """Calls, errors, refusals, in flight, p50/p99 handling time; the transport's drops."""
        info = self._describe()
        own: dict[str, Any] = {} if self._counters is None else dict(self._counters.snapshot())
        counters = self._transport_counters()
        return {
            "server": info.get("server"),
            "topic": info.get("topic"),
            **own,
            "transport": {name: counters.get(name, 0) for name in TRANSPORT_COUNTERS},
        }
