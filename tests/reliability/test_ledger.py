"""The ledger with no faults: nothing lost, duplicated or misrouted; memory and fds flat.

The short forms of ``make soak`` (``tests/reliability/ledger.py``), plus checks
that the ledger itself sees each kind of fault it claims to count.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.reliability

SERVERS = 3


@pytest.fixture
def servers(start_server):
    return [start_server(f"s{index}") for index in range(SERVERS)]


def test_calls_and_casts_none_lost_duplicated_or_misrouted(ledger, matchmaker_url, servers):
    load = ledger.Load(threads=8, calls=2000, sample_interval=0.2)
    report = ledger.run(matchmaker_url, servers, load)
    print(report.table())
    counts = report.counts
    assert (counts.lost, counts.duplicated, counts.misrouted) == (0, 0, 0), report.table()
    assert counts.errors == 0, report.table()
    assert counts.calls == counts.results == 8 * 2000
    assert counts.casts == 8 * 2000 // 4
    # Every call and every cast was recorded by exactly one server, and the
    # topic calls were spread over all of them.
    assert sum(counts.delivered_by.values()) == counts.calls + counts.casts
    assert set(counts.delivered_by) == {s.name for s in servers}
    assert min(counts.delivered_by.values()) > (counts.calls + counts.casts) // (2 * SERVERS)
    assert report.latency.total == counts.results
    assert report.transport_stats.get("late_replies", 0) == 0


def test_rss_and_fds_stay_flat_under_load(ledger, matchmaker_url, servers):
    load = ledger.Load(threads=16, calls=None, duration=10.0, sample_interval=0.2)
    report = ledger.run(matchmaker_url, servers, load)
    print(report.table())
    assert report.counts.clean(), report.table()
    assert {t.name for t in report.trends} == {"client", *(s.name for s in servers)}
    assert all(t.samples >= 20 for t in report.trends), report.table()
    assert report.flat, report.table()


# --- the ledger sees what it counts ------------------------------------------------------


def test_the_ledger_counts_lost_duplicated_and_misrouted(ledger):
    book = ledger.Ledger()
    ok = book.send(ledger.CALL, "")
    book.delivered("s0", ok, "")
    book.result(ok, {"id": ok, "server": "s0", "payload": ledger.payload(ok)})

    book.send(ledger.CAST, "")  # never delivered
    twice = book.send(ledger.CAST, "s1")
    book.delivered("s1", twice, "s1")
    book.delivered("s1", twice, "s1")  # after it was settled
    wrong_server = book.send(ledger.CAST, "s1")
    book.delivered("s2", wrong_server, "s1")
    wrong_payload = book.send(ledger.CALL, "")
    book.delivered("s0", wrong_payload, "")
    book.result(wrong_payload, {"id": ok, "server": "s0", "payload": ledger.payload(ok)})
    no_outcome = book.send(ledger.CALL, "")
    book.delivered("s0", no_outcome, "")
    book.delivered("s0", 10_000, "")  # an id nobody sent

    failed = book.send(ledger.CALL, "")
    book.error(failed, TimeoutError("late"))

    counts = book.close()
    assert (counts.calls, counts.casts, counts.results, counts.errors) == (4, 3, 2, 1)
    assert counts.lost == 2  # never_delivered, no_outcome
    assert counts.duplicated == 1
    assert counts.misrouted == 3  # wrong_server, wrong_payload, the unknown id
    assert not counts.clean()


def test_the_sampler_flags_steady_growth_not_noise(ledger):
    mib = ledger.MIB
    sampler = ledger.Sampler({"p": 1}, interval=1.0)
    # Noise: +-3 MiB around 40 MiB, a descriptor coming and going.
    sampler.samples["p"] = [
        ((40 + (3 if i % 3 == 0 else -3 if i % 3 == 1 else 0)) * mib, 20 + i % 2) for i in range(60)
    ]
    (noisy,) = sampler.trends()
    assert noisy.flat
    # A leak: 1 MiB per sample; and one descriptor per sample.
    sampler.samples["p"] = [((40 + i) * mib, 20) for i in range(60)]
    (leaking,) = sampler.trends()
    assert not leaking.flat
    sampler.samples["p"] = [(40 * mib, 20 + i) for i in range(60)]
    (fd_leak,) = sampler.trends()
    assert not fd_leak.flat


def test_histogram_quantiles_within_one_percent(ledger):
    hist = ledger.Histogram()
    for i in range(1, 1001):
        hist.add(i / 1000)  # 1 ms .. 1 s
    assert hist.total == 1000
    assert hist.max == 1.0
    assert 0.500 <= hist.quantile(0.5) <= 0.500 * 1.0101
    assert 0.990 <= hist.quantile(0.99) <= 0.990 * 1.0101
    assert hist.quantile(1.0) == 1.0
