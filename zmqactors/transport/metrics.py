"""Prometheus metrics of a transport: a collector, and the opt-in HTTP endpoint.

Needs the optional ``prometheus`` extra (``prometheus_client``), imported
only when a collector is built or the endpoint starts: without it, nothing
is imported and nothing costs. `TransportCollector` reads, at each scrape,

- every counter of ``transport.stats`` as ``zmqactors_<name>_total`` (what
  the transport dropped, refused or retried: ``late_replies``,
  ``protocol_errors``, ``auth_rejections``, ...), labelled with the
  transport's matchmaker URL (password redacted);
- each running RPC server's own counters, labelled ``exchange``, ``topic``,
  ``server``: ``zmqactors_server_requests_total`` (calls and casts run),
  ``zmqactors_server_errors_total`` (their endpoint raised),
  ``zmqactors_server_refused_total`` (no such method or version),
  ``zmqactors_server_in_flight`` (running now) and the histogram
  ``zmqactors_server_handling_seconds``.

A service registers it (``REGISTRY.register(TransportCollector(t))``), or
sets the ``metrics_port`` option: the transport then serves ``/metrics`` on
``metrics_address`` (loopback by default) from a daemon thread of
``prometheus_client``, for as long as it is open.
"""

from __future__ import annotations

import threading
import weakref
from typing import TYPE_CHECKING, Any, Protocol

import structlog

from zmqactors.errors import ConfigurationError
from zmqactors.options import GROUP_NAME
from zmqactors.urls import redact

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    from zmqactors.core.stats import ServerStats, Stats
    from zmqactors.options import Settings

__all__ = ["MetricsEndpoint", "MetricsSource", "TransportCollector"]

_log = structlog.get_logger("zmqactors.metrics")


class MetricsSource(Protocol):
    """What the collector reads of a transport (a `Transport`)."""

    settings: Settings
    stats: Stats

    def served_stats(self) -> list[tuple[Mapping[str, str], ServerStats]]:
        """Each running server's labels and counters."""


def _require_client() -> Any:
    try:
        import prometheus_client.core  # noqa: PLC0415 - the optional extra, only when asked for
    except ImportError:
        msg = (
            "Prometheus metrics need the prometheus_client package: "
            "pip install 'zmqactors[prometheus]'"
        )
        raise ConfigurationError(msg) from None
    return prometheus_client.core


class TransportCollector:
    """A ``prometheus_client`` collector of one transport's counters and its servers'.

    Raises `ConfigurationError` when ``prometheus_client`` is not installed.
    """

    def __init__(self, transport: MetricsSource) -> None:
        self._core = _require_client()
        # Weak: an endpoint's thread must not keep an unclosed transport alive.
        self._transport = weakref.ref(transport)
        self._label = redact(transport.settings.matchmaker.url)

    def describe(self) -> list[Any]:
        """Nothing up front: the counters that exist are known only at a scrape."""
        return []

    def collect(self) -> Iterator[Any]:
        """The metric families, as they are now."""
        core = self._core
        transport = self._transport()
        if transport is None:
            return
        for name, value in sorted(transport.stats.snapshot().items()):
            family = core.CounterMetricFamily(
                f"zmqactors_{name}",
                f"zmqactors transport counter {name} (see the Stats documentation)",
                labels=["transport"],
            )
            family.add_metric([self._label], value)
            yield family
        served = transport.served_stats()
        labels = ["transport", "exchange", "topic", "server"]
        # (metric, ServerStats field, help, family type)
        specs = (
            (
                "requests",
                "calls",
                "Requests a server ran (calls and casts)",
                core.CounterMetricFamily,
            ),
            ("errors", "errors", "Requests whose endpoint raised", core.CounterMetricFamily),
            (
                "refused",
                "refused",
                "Requests refused before they ran (no such method or version)",
                core.CounterMetricFamily,
            ),
            ("in_flight", "in_flight", "Requests running now", core.GaugeMetricFamily),
        )
        families = [
            (field, family(f"zmqactors_server_{name}", text, labels=labels))
            for name, field, text, family in specs
        ]
        handling = core.HistogramMetricFamily(
            "zmqactors_server_handling_seconds",
            "Time a server spent on a request, from decoding to the reply",
            labels=labels,
        )
        for server_labels, counters in served:
            values = [self._label, *(server_labels.get(k, "") for k in labels[1:])]
            snap = counters.snapshot()
            for field, family in families:
                family.add_metric(values, snap[field] or 0)
            histogram = counters.histogram()
            cumulative = 0
            buckets = []
            for bound, count in zip(histogram.bounds, histogram.counts, strict=False):
                cumulative += count
                buckets.append((_le(bound), cumulative))
            buckets.append(("+Inf", histogram.count))
            handling.add_metric(values, buckets, histogram.total)
        yield from (family for _, family in families)
        yield handling


def _le(bound: float) -> str:
    return repr(bound)


class MetricsEndpoint:
    """``/metrics`` over HTTP for one transport (``metrics_port``), from a daemon thread."""

    def __init__(self, transport: MetricsSource) -> None:
        settings = transport.settings
        collector = TransportCollector(transport)
        import prometheus_client  # noqa: PLC0415 - the optional extra; checked just above

        registry = prometheus_client.CollectorRegistry(auto_describe=False)
        registry.register(collector)
        try:
            server, thread = prometheus_client.start_http_server(
                settings.metrics_port, addr=settings.metrics_address, registry=registry
            )
        except OSError as exc:
            msg = (
                f"option {GROUP_NAME}.metrics_port: cannot serve metrics on "
                f"{settings.metrics_address} port {settings.metrics_port}: {exc.strerror or exc}"
            )
            raise ConfigurationError(msg) from None
        self._server: Any = server
        self._thread = thread
        self._lock = threading.Lock()
        self.port = int(server.server_address[1])
        _log.info("serving metrics", address=settings.metrics_address, port=self.port)

    def close(self) -> None:
        """Stop serving (idempotent)."""
        with self._lock:
            server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
