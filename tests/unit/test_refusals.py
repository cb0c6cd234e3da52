"""RefusalLog: one line per peer per interval, with a count (no sockets, no sleeps)."""

from __future__ import annotations

import pytest

from zmqactors.core.refusals import OTHER_PEERS, RefusalLog

pytestmark = pytest.mark.unit


def test_the_first_refusal_of_a_peer_is_logged_at_once():
    log = RefusalLog(10.0)
    assert log.refused("tcp://10.0.0.1:5000", 0.0) == ("tcp://10.0.0.1:5000", 1)


def test_a_flood_gives_one_line_per_interval_with_the_count():
    log = RefusalLog(10.0)
    lines = [line for i in range(1000) if (line := log.refused("p", i * 0.05)) is not None]
    # 1000 refusals over 50 s: one line at once, then one per 10 s window.
    assert lines[0] == ("p", 1)
    assert len(lines) == 5
    assert sum(count for _, count in lines) + sum(log.pending().values()) == 1000


def test_peers_are_counted_apart():
    log = RefusalLog(10.0)
    assert log.refused("a", 0.0) == ("a", 1)
    assert log.refused("b", 1.0) == ("b", 1)
    assert log.refused("a", 2.0) is None
    assert log.refused("a", 3.0) is None
    assert log.refused("b", 4.0) is None
    assert log.pending() == {"a": 2, "b": 1}
    assert log.refused("a", 10.0) == ("a", 3)
    assert log.refused("b", 10.5) is None
    assert log.refused("b", 11.0) == ("b", 3)


def test_a_zero_interval_logs_every_refusal():
    log = RefusalLog(0.0)
    assert [log.refused("p", 0.0) for _ in range(3)] == [("p", 1)] * 3


def test_memory_stays_bounded_under_many_peers():
    log = RefusalLog(10.0, max_peers=3)
    for peer in ("a", "b", "c"):
        log.refused(peer, 0.0)
    # Every tracked peer is inside its interval: new ones share one key.
    assert log.refused("d", 1.0) == (OTHER_PEERS, 1)
    assert log.refused("e", 2.0) is None
    assert log.pending() == {OTHER_PEERS: 1}
    # Once intervals are over, quiet peers are forgotten and new ones tracked.
    assert log.refused("f", 20.0) == ("f", 1)
    assert len(log.pending()) <= 3


@pytest.mark.parametrize(("interval", "max_peers"), [(-1.0, 10), (1.0, 0)])
def test_bad_limits_are_refused_by_name(interval, max_peers):
    with pytest.raises(ValueError, match="interval"):
        RefusalLog(interval, max_peers)
