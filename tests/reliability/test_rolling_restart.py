"""Rolling restarts lose no call (issue #20): every server of a topic restarted under load.

Each server in turn gets SIGTERM (a graceful stop: it deregisters, answers or
refuses what still arrives, finishes what it runs) and is replaced by a new
process under the same name; four client threads call the topic all along
(every fifth request an acknowledged cast). No call or acknowledged cast may
fail and none may take a second; on every matchmaker backend, and with CURVE.
"""

from __future__ import annotations

import signal

import pytest

import zmqactors as za
from tests.helpers import wait_until

pytestmark = pytest.mark.reliability


def _check(outcome) -> None:
    assert outcome.calls > 400, outcome.line()
    assert not outcome.failures, f"{outcome.line()}: {outcome.examples}"
    assert outcome.slowest < 1.0, outcome.line()


def test_rolling_restart_on_the_file_matchmaker(rolling, ledger, matchmaker_url):
    def start(name):
        return ledger.ServerProcess(matchmaker_url, name, topic=rolling.TOPIC).start()

    _check(rolling.rolling_restart(start, matchmaker_url, wait_until=wait_until))


def test_rolling_restart_on_redis(rolling, ledger, start_redis):
    url = start_redis().url

    def start(name):
        return ledger.ServerProcess(url, name, topic=rolling.TOPIC).start()

    _check(rolling.rolling_restart(start, url, wait_until=wait_until))


def test_rolling_restart_on_etcd(rolling, ledger, etcd_server):
    url = etcd_server.url

    def start(name):
        return ledger.ServerProcess(url, name, topic=rolling.TOPIC).start()

    _check(rolling.rolling_restart(start, url, wait_until=wait_until))


def test_rolling_restart_with_curve(rolling, ledger, matchmaker_url, curve_keys):
    server_url = curve_keys.server_url(matchmaker_url)

    def start(name):
        return ledger.ServerProcess(server_url, name, topic=rolling.TOPIC).start()

    client_url = curve_keys.client_url(matchmaker_url)
    _check(rolling.rolling_restart(start, client_url, wait_until=wait_until))


def test_sigterm_during_a_slow_call_answers_it_then_exits(ledger, matchmaker_url):
    server = ledger.ServerProcess(matchmaker_url, "slow", topic="slow-stop").start()
    with za.Transport.from_url(matchmaker_url) as transport:
        client = za.RPCClient(transport, za.Target("slow-stop"), timeout=10)
        future = client.call_async("sleep", seconds=1.0, id=7)
        # The call has reached the endpoint (it records its id, then sleeps).
        wait_until(
            lambda: client.call("drain", limit=10) == [[7, ""]], "the slow call running", timeout=10
        )
        server.signal(signal.SIGTERM)
        assert future.result(timeout=10) == 1.0
        assert server.proc.wait(timeout=15) == 0
        # Once gone, a call to the topic fails fast: nothing else serves it.
        with pytest.raises(za.NoRespondersError):
            client.call("whoami")
    server.stop()


def test_a_pool_member_restarted_under_load_loses_no_notification(spawn_listener, matchmaker_url):
    topic = "rolling-notes"
    members = {name: spawn_listener(topic, name, "--pool", "workers") for name in ("a", "b")}
    gone: list[str] = []
    with za.Transport.from_url(matchmaker_url) as transport:
        notifier = za.Notifier(transport, "pub", topics=[topic])
        sent = 0

        def send(count: int) -> None:
            nonlocal sent
            for _ in range(count):
                assert notifier.info("tick", {"id": sent}) == 1
                sent += 1

        send(200)
        old = members["a"]
        old.proc.terminate()
        send(200)  # while "a" drains and leaves
        assert old.proc.wait(timeout=15) == 0
        gone.extend(old.drain())
        old.stop()
        members["a"] = spawn_listener(topic, "a", "--pool", "workers")
        send(200)

        def received() -> set[int]:
            lines = [*gone, *members["a"].drain(), *members["b"].drain()]
            return {int(line.split()[1]) for line in lines if line.startswith("got ")}

        try:
            wait_until(lambda: received() == set(range(sent)), "every notification", timeout=30)
        except AssertionError:
            missing = sorted(set(range(sent)) - received())
            counts = transport.stats.snapshot()
            a_lines = [line for line in members["a"].drain() if not line.startswith("got ")]
            b_lines = [line for line in members["b"].drain() if not line.startswith("got ")]
            pytest.fail(
                f"missing {missing[:20]} ({len(missing)}); client counters {counts}; "
                f"a {a_lines[:5]} b {b_lines[:5]} gone {[g for g in gone if 'got' not in g][:5]}"
            )
