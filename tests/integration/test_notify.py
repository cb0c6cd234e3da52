"""Notifications and fanout between processes: pools, batches, requeue, every server once."""

from __future__ import annotations

import collections
import time

import pytest

import zmqactors as za

pytestmark = [pytest.mark.integration, pytest.mark.both_families]

TOPIC = "notifications"


def _ids(lines: list[str], prefix: str = "got ") -> list[int]:
    return [int(line.split()[1]) for line in lines if line.startswith(prefix)]


def test_each_pool_gets_every_notification_split_over_its_listeners(spawn_listener, transport):
    pools = {
        pool: [spawn_listener(TOPIC, f"{pool}-{i}", "--pool", pool) for i in range(2)]
        for pool in ("audit", "billing")
    }
    notifier = za.Notifier(transport, "compute.node-1", topics=(TOPIC,))
    for i in range(200):
        assert notifier.info("instance.create", {"id": i}) == 2  # one per pool
    for pool, members in pools.items():
        deadline = time.monotonic() + 30
        while sum(len(_ids(m.drain())) for m in members) < 200:
            assert time.monotonic() < deadline, f"pool {pool} did not get all 200"
        received = [i for member in members for i in _ids(member.lines)]
        assert sorted(received) == list(range(200)), f"pool {pool}: lost or duplicated"
        counts = [len(_ids(member.lines)) for member in members]
        assert all(count > 0 for count in counts), f"pool {pool}: load not shared: {counts}"


def test_batches_of_100_arrive_as_100_100_5(spawn_listener, transport):
    listener = spawn_listener(
        TOPIC, "batcher", "--batch-size", "100", "--batch-timeout", "0.5", "--pool", "batch"
    )
    notifier = za.Notifier(transport, "compute.node-1", topics=(TOPIC,))
    for i in range(205):
        notifier.info("instance.create", {"id": i})
    lines = listener.read_lines(
        lambda lines: sum(int(x.split()[1]) for x in lines if x.startswith("batch ")) >= 205
    )
    batches = [line.split() for line in lines if line.startswith("batch ")]
    assert [int(b[1]) for b in batches] == [100, 100, 5]
    assert [int(i) for b in batches for i in b[2:]] == list(range(205))


def test_requeued_notification_is_delivered_again(spawn_listener, transport):
    listener = spawn_listener(TOPIC, "requeuer", "--requeue-first")
    notifier = za.Notifier(transport, "compute.node-1", topics=(TOPIC,))
    for i in range(5):
        notifier.info("instance.create", {"id": i})
    lines = listener.read_lines(lambda lines: len(_ids(lines)) >= 5)
    assert sorted(_ids(lines)) == list(range(5))
    assert sorted(_ids(lines, "requeued ")) == list(range(5))


def test_a_notifier_faster_than_its_listener_is_slowed_down_and_loses_nothing(
    spawn_listener, transports, matchmaker_url, with_query
):
    # Small queues on both sides and a listener taking half a millisecond a
    # notification: 2,000 of 2 KB each, sent as fast as the notifier can,
    # outgrow every buffer between them. They must wait for room, not be
    # refused at the full queue (half were, before).
    slow_url = with_query(matchmaker_url, "max_queued_per_client=10&high_water_mark=5")
    listener = spawn_listener(TOPIC, "slow", "--delay", "0.0005", "--pool", "slow", url=slow_url)
    transport = transports(with_query(matchmaker_url, "high_water_mark=5"))
    notifier = za.Notifier(transport, "compute.node-1", topics=(TOPIC,))
    pad = "x" * 2048
    for i in range(2000):
        assert notifier.info("instance.create", {"id": i, "pad": pad}) == 1
    lines = listener.read_lines(lambda lines: len(_ids(lines)) >= 2000, timeout=60.0)
    assert sorted(_ids(lines)) == list(range(2000))
    assert transport.stats.snapshot().get("send_failures", 0) == 0


def test_notification_with_no_listener_is_counted_not_raised(transport):
    notifier = za.Notifier(transport, "compute.node-1", topics=("nobody.listens",))
    assert notifier.warn("disk.full", {"free": 0}) == 0
    assert transport.stats.snapshot()["notifications_unrouted"] == 1


def test_fanout_reaches_every_server_exactly_once(spawn_server, transport):
    servers = [spawn_server("fanned", f"node-{i}") for i in range(3)]
    client = za.RPCClient(transport, za.Target("fanned"), timeout=10)
    fanout = client.prepare(fanout=True)
    for i in range(50):
        fanout.cast("record", value=i)
    # A server that joined a moment ago gets the next fanout too.
    late = spawn_server("fanned", "node-late")
    fanout.cast("record", value="after-join")
    for proc in servers:
        direct = client.prepare(server=proc.server)
        deadline = time.monotonic() + 10
        while len(direct.call("recorded")) < 51:
            assert time.monotonic() < deadline, f"{proc.server} missed fanouts"
        # Casts run on several worker threads: each arrives once, in any order.
        assert sorted(map(str, direct.call("recorded"))) == sorted(
            map(str, [*range(50), "after-join"])
        )
    assert client.prepare(server=late.server).call("recorded") in ([], ["after-join"])
    deadline = time.monotonic() + 10
    while client.prepare(server=late.server).call("recorded") != ["after-join"]:
        assert time.monotonic() < deadline, "the late server missed the fanout"
    with pytest.raises(ValueError, match="fanout"):
        fanout.call("recorded")


def test_fanout_to_no_server_raises_at_once(transport):
    client = za.RPCClient(transport, za.Target("fanned.empty", fanout=True))
    with pytest.raises(za.NoRespondersError):
        client.cast("record", value=1)


def test_pools_in_one_process_and_filters(transport):
    seen = collections.defaultdict(list)

    class Handler:
        filter_rule = za.NotificationFilter(event_type=r"instance\.")

        def __init__(self, name):
            self.name = name

        def error(self, publisher_id, event_type, payload, metadata):
            seen[self.name].append((publisher_id, event_type, payload, metadata["priority"]))

    listener = za.NotificationListener(transport, [za.Target(TOPIC)], [Handler("a")])
    with listener:
        notifier = za.Notifier(transport, "api.host-1", topics=(TOPIC,)).prepare("api.host-2")
        notifier.error("volume.attach", {"n": 1})  # filtered out
        notifier.error("instance.delete", {"n": 2})
        deadline = time.monotonic() + 10
        while not seen["a"]:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert seen["a"] == [("api.host-2", "instance.delete", {"n": 2}, "error")]
