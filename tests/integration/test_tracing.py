"""OpenTelemetry tracing (issue #17): one trace spans the client and server processes.

The test process and the server process each record spans with the SDK's
in-memory exporter; the server's half comes back through a call.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import zmqactors as za
from tests.conftest import with_query
from tests.helpers import wait_until

pytestmark = pytest.mark.integration

trace = pytest.importorskip("opentelemetry.trace")
sdk_trace = pytest.importorskip("opentelemetry.sdk.trace")
export = pytest.importorskip("opentelemetry.sdk.trace.export")
in_memory = pytest.importorskip("opentelemetry.sdk.trace.export.in_memory_span_exporter")

TOPIC = "traced"
SCRIPT = Path(__file__).with_name("traced_server.py")


@pytest.fixture(scope="module")
def exporter():
    """The test process's spans, in memory (the global provider is set once per process)."""
    recorder = in_memory.InMemorySpanExporter()
    provider = sdk_trace.TracerProvider()
    provider.add_span_processor(export.SimpleSpanProcessor(recorder))
    trace.set_tracer_provider(provider)
    return recorder


def hexid(value: int) -> str:
    return f"{value:016x}"


def test_one_trace_spans_the_client_and_the_server_process(exporter, matchmaker_url, spawn_server):
    url = with_query(matchmaker_url, "tracing=true")
    spawn_server(TOPIC, "t-1", script=SCRIPT, url=url)
    exporter.clear()
    with za.Transport.from_url(url) as transport:
        client = za.RPCClient(transport, za.Target(TOPIC), timeout=10)
        tracer = trace.get_tracer("test")
        with tracer.start_as_current_span("operation") as operation:
            assert client.call("add", a=1, b=2) == 3
            client.cast("record", value="traced")
        wait_until(lambda: len(client.call("recorded")) == 1, "the cast ran", timeout=10)
        served = client.call("spans")
    trace_id = f"{operation.get_span_context().trace_id:032x}"
    mine = {span.name: span for span in exporter.get_finished_spans()}
    call_span = mine[f"{TOPIC}/add"]
    cast_span = mine[f"{TOPIC}/record"]
    # The client's spans are children of the caller's current span.
    assert call_span.parent.span_id == operation.get_span_context().span_id
    assert call_span.kind is trace.SpanKind.CLIENT
    assert cast_span.kind is trace.SpanKind.PRODUCER
    assert call_span.attributes["rpc.system"] == "zmqactors"
    # The server's spans continue the same trace, each a child of its client span.
    theirs = {span["name"]: span for span in served if span["trace_id"] == trace_id}
    assert theirs[f"{TOPIC}/add"]["parent_id"] == hexid(call_span.context.span_id)
    assert theirs[f"{TOPIC}/add"]["kind"] == "SERVER"
    assert theirs[f"{TOPIC}/record"]["parent_id"] == hexid(cast_span.context.span_id)
    assert theirs[f"{TOPIC}/record"]["kind"] == "CONSUMER"


def test_a_failed_call_marks_the_client_span_as_an_error(exporter, matchmaker_url, spawn_server):
    url = with_query(matchmaker_url, "tracing=true")
    spawn_server(TOPIC, "t-2", script=SCRIPT, url=url)
    exporter.clear()
    with za.Transport.from_url(url) as transport:
        client = za.RPCClient(transport, za.Target(TOPIC), timeout=10)
        with pytest.raises(za.RemoteError):
            client.call("fail", message="no")
        future = client.call_async("add", a=2, b=2)
        assert future.result(timeout=10) == 4
    spans = [s for s in exporter.get_finished_spans() if s.name.startswith(f"{TOPIC}/")]
    by_name = {s.name: s for s in spans}
    assert by_name[f"{TOPIC}/fail"].status.status_code is trace.StatusCode.ERROR
    wait_until(
        lambda: f"{TOPIC}/add" in {s.name for s in exporter.get_finished_spans()},
        "the call_async span ended",
        timeout=10,
    )


def test_a_notification_continues_the_publishers_trace(exporter):
    exporter.clear()
    received = []

    class Listener:
        def info(self, publisher_id, event_type, payload, metadata):  # noqa: ARG002
            received.append(trace.get_current_span().get_span_context())

    with za.Transport.from_url("zmq+memory://traced-notify?tracing=true") as transport:
        listener = za.NotificationListener(transport, [za.Target("events")], [Listener()])
        with listener:
            notifier = za.Notifier(transport, "pub", topics=["events"])
            notifier.info("thing.happened", {"n": 1})
            wait_until(lambda: received, "the notification", timeout=10)
    (served,) = received
    published = next(s for s in exporter.get_finished_spans() if s.name == "events/thing.happened")
    assert served.trace_id == published.context.trace_id
    assert published.kind is trace.SpanKind.PRODUCER


OFF = """
import sys
import zmqactors as za

class Calc:
    def add(self, a, b):
        return a + b

with za.Transport.from_url("zmq+memory://untraced") as transport:
    assert transport.tracing is None
    with za.RPCServer(transport, za.Target("t", server="s"), [Calc()]):
        assert za.RPCClient(transport, za.Target("t"), timeout=10).call("add", a=1, b=2) == 3
loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("opentelemetry", "prometheus_client"))
print(loaded)
"""


def test_without_the_options_neither_extra_is_imported():
    result = subprocess.run(
        [sys.executable, "-c", OFF], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"
