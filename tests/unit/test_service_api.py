"""The service API's pure parts: a server's counters, its histogram, the built-in endpoint."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

import zmqactors
from tests.wire_helpers import make_request
from zmqactors import wire
from zmqactors.core.dispatch import SERVICE_NAMESPACE, Dispatcher
from zmqactors.core.service_api import ServiceEndpoint, describe_endpoints
from zmqactors.core.stats import HANDLING_BUCKETS, HistogramSnapshot, ServerStats, Stats

pytestmark = pytest.mark.unit

MAX = 1 << 20
TARGET = zmqactors.Target(topic="compute", server="node-1")


class Calc:
    def add(self, a: int, b: int = 2) -> int:
        return a + b

    def boom(self) -> None:
        raise ValueError("boom")

    def _hidden(self) -> None:
        """Never listed."""


def test_counters_count_runs_failures_refusals_and_in_flight():
    counters = ServerStats()
    counters.begin()
    assert counters.snapshot()["in_flight"] == 1
    counters.end(0.002, failed=False)
    counters.begin()
    counters.end(0.5, failed=True)
    counters.refuse()
    snap = counters.snapshot()
    assert (snap["calls"], snap["errors"], snap["refused"], snap["in_flight"]) == (2, 1, 1, 0)
    assert snap["p50"] is not None
    assert snap["p99"] is not None
    assert 0.001 <= snap["p50"] <= 0.0025
    assert 0.25 <= snap["p99"] <= 0.5


def test_an_empty_histogram_has_no_quantiles():
    assert ServerStats().snapshot()["p50"] is None


@given(st.lists(st.floats(min_value=0, max_value=20), min_size=1, max_size=200))
def test_quantiles_fall_in_the_bucket_of_the_true_quantile(values):
    counters = ServerStats()
    for value in values:
        counters.begin()
        counters.end(value, failed=False)
    histogram = counters.histogram()
    assert histogram.count == len(values)
    assert sum(histogram.counts) == len(values)
    median = sorted(values)[max(0, -(-len(values) // 2) - 1)]
    estimate = histogram.quantile(0.5)
    assert estimate is not None
    # Same bucket as the true median (or the last bound, beyond it).
    bounds = (0.0, *HANDLING_BUCKETS)
    for lower, upper in itertools.pairwise(bounds):
        if lower < median <= upper or (median == 0 and lower == 0):
            assert lower <= estimate <= upper
            break
    else:
        assert estimate == HANDLING_BUCKETS[-1]


def test_quantile_interpolates_within_a_bucket():
    snap = HistogramSnapshot((1.0, 2.0), (0, 4, 0), 6.0, 4)
    assert snap.quantile(0.5) == pytest.approx(1.5)


def dispatcher_with_service(endpoints, *, exposed="methods"):
    service = ServiceEndpoint(lambda: {"server": "node-1", "topic": "compute"}, dict)
    dispatcher = Dispatcher(TARGET, [*endpoints, service], MAX, Stats(), exposed=exposed)
    service.bind(dispatcher.counters)
    return dispatcher


def call(dispatcher, method, namespace=None, **args):
    body = dispatcher.handle(wire.encode(make_request(method, namespace=namespace, args=args))[1])
    return wire.decode_body(body, MAX)


def test_service_calls_answer_and_are_not_counted():
    dispatcher = dispatcher_with_service([Calc()])
    assert call(dispatcher, "add", a=1).result == 3
    assert isinstance(call(dispatcher, "boom"), wire.ErrorReply)
    assert isinstance(call(dispatcher, "nope"), wire.ErrorReply)
    pong = call(dispatcher, "ping", SERVICE_NAMESPACE).result
    assert pong["server"] == "node-1"
    stats = call(dispatcher, "stats", SERVICE_NAMESPACE).result
    assert (stats["calls"], stats["errors"], stats["refused"], stats["in_flight"]) == (2, 1, 1, 0)
    assert set(stats["transport"]) >= {"busy_refused", "expired_dropped", "auth_rejections"}
    info = call(dispatcher, "info", SERVICE_NAMESPACE).result
    assert info["uptime"] >= 0


def test_the_service_api_answers_with_exposed_decorated_too():
    class Marked:
        @zmqactors.expose
        def add(self, a: int) -> int:
            return a

    dispatcher = dispatcher_with_service([Marked()], exposed="decorated")
    assert call(dispatcher, "ping", SERVICE_NAMESPACE).result["topic"] == "compute"


def test_endpoints_are_described_with_their_exposed_methods_and_signatures():
    (described,) = describe_endpoints([Calc()], "methods")
    assert described["class"].endswith("Calc")
    assert described["methods"] == {
        "add": "(a: 'int', b: 'int' = 2) -> 'int'",
        "boom": "() -> 'None'",
    }
