"""An RPC server that records its OpenTelemetry spans in memory and hands them out.

The integration tests' server (``serve.py``) with the SDK configured: a tracer
provider exporting into memory. ``spans()`` returns what it recorded, so a
test in another process sees the server's half of a trace.
"""

from __future__ import annotations

import sys
from pathlib import Path

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serve import Endpoint, serve

EXPORTER = InMemorySpanExporter()


class TracedEndpoint(Endpoint):
    def spans(self) -> list[dict[str, object]]:
        return [
            {
                "name": span.name,
                "kind": span.kind.name,
                "trace_id": f"{span.context.trace_id:032x}",
                "span_id": f"{span.context.span_id:016x}",
                "parent_id": f"{span.parent.span_id:016x}" if span.parent else None,
                "attributes": dict(span.attributes or {}),
            }
            for span in EXPORTER.get_finished_spans()
        ]


if __name__ == "__main__":
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(EXPORTER))
    trace.set_tracer_provider(provider)
    serve(TracedEndpoint)
