"""OpenTelemetry tracing of calls, casts and notifications (the optional ``otel`` extra).

Off unless the ``tracing`` option is on: then a transport imports
``opentelemetry`` (`ConfigurationError` naming the extra when it is missing),
and

- a client starts a span around each call (kind CLIENT, ended when the call
  settles), cast (PRODUCER) and notification (PRODUCER), as a child of the
  caller's current span, and sends its W3C trace context (``traceparent``,
  ``tracestate``) in the request's ``trace`` field;
- a server continues that trace: a span (SERVER for a call, CONSUMER for a
  cast or notification) around the endpoint call, a child of the caller's.

The spans go to whatever tracer provider the application configured (the
OpenTelemetry SDK and its exporters are the application's business; without
one, the API's no-op provider costs almost nothing). Span names follow the
OpenTelemetry RPC conventions: ``<topic>/<method>`` with ``rpc.system``
``zmqactors``, ``rpc.service`` (the topic) and ``rpc.method``. Without the
option nothing is imported and the hot path pays one attribute test.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from zmqactors.errors import ConfigurationError
from zmqactors.options import GROUP_NAME

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping
    from concurrent.futures import Future

    from zmqactors.options import Settings
    from zmqactors.topics import Target

__all__ = ["Tracing", "tracing_for"]

_SYSTEM = "zmqactors"


class Tracing:
    """Spans on both sides of a message, through the OpenTelemetry API."""

    def __init__(self) -> None:
        try:
            from opentelemetry import propagate, trace  # noqa: PLC0415 - the optional extra
        except ImportError:
            msg = (
                f"option {GROUP_NAME}.tracing needs the OpenTelemetry API: "
                "pip install 'zmqactors[otel]'"
            )
            raise ConfigurationError(msg) from None
        self._trace = trace
        self._propagate = propagate
        self._tracer = trace.get_tracer("zmqactors")
        self._kinds = {
            "call": trace.SpanKind.CLIENT,
            "cast": trace.SpanKind.PRODUCER,
            "notify": trace.SpanKind.PRODUCER,
        }

    def _attributes(self, target: Target, method: str) -> dict[str, str]:
        attributes = {
            "rpc.system": _SYSTEM,
            "rpc.service": target.topic,
            "rpc.method": method,
            "messaging.destination.name": f"{target.exchange_name}/{target.topic}",
        }
        if target.server:
            attributes["server.name"] = target.server
        return attributes

    def start(self, what: str, target: Target, method: str) -> tuple[Any, dict[str, str]]:
        """Start the client span of a ``what`` (call, cast, notify); it and its trace context."""
        span = self._tracer.start_span(
            f"{target.topic}/{method}",
            kind=self._kinds[what],
            attributes=self._attributes(target, method),
        )
        carrier: dict[str, str] = {}
        self._propagate.inject(carrier, context=self._trace.set_span_in_context(span))
        return span, carrier

    def end(self, span: Any, error: BaseException | None = None) -> None:
        """End a client span, with the error that ended its call, if one did."""
        if error is not None:
            span.record_exception(error)
            span.set_status(self._trace.Status(self._trace.StatusCode.ERROR, str(error)))
        span.end()

    def end_with(self, span: Any, future: Future[Any]) -> None:
        """End ``span`` when ``future`` settles (with its exception, if any)."""
        future.add_done_callback(lambda done: self.end(span, done.exception()))

    @contextlib.contextmanager
    def sent(self, what: str, target: Target, method: str) -> Iterator[dict[str, str]]:
        """A client span around sending (casts, notifications); yields the trace context."""
        span, carrier = self.start(what, target, method)
        try:
            yield carrier
        except BaseException as exc:
            self.end(span, exc)
            raise
        self.end(span)

    @contextlib.contextmanager
    def served(
        self, carrier: Mapping[str, str], topic: str, method: str, *, call: bool
    ) -> Iterator[None]:
        """The server's span around an endpoint call, continuing the caller's trace."""
        parent = self._propagate.extract(dict(carrier))
        kind = self._trace.SpanKind.SERVER if call else self._trace.SpanKind.CONSUMER
        attributes = {"rpc.system": _SYSTEM, "rpc.service": topic, "rpc.method": method}
        with self._tracer.start_as_current_span(
            f"{topic}/{method}", context=parent, kind=kind, attributes=attributes
        ):
            yield


def tracing_for(settings: Settings) -> Tracing | None:
    """The transport's `Tracing`, or None when the ``tracing`` option is off."""
    return Tracing() if settings.tracing else None
