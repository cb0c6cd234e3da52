"""`FairQueues` without sockets: round robin over servers and clients, caps and bounds."""

from __future__ import annotations

import random

import pytest

from zmqactors.core.fairness import LINGER, Admission, FairQueues

pytestmark = pytest.mark.unit

# A monotonic time; the tests move it by hand.
NOW = 100.0


def drain(queues: FairQueues[str]) -> list[tuple[int, bytes, str]]:
    """Pop everything runnable, finishing each at once (so caps never bind)."""
    out = []
    while (picked := queues.pop()) is not None:
        out.append(picked)
        queues.done(picked[0], picked[1], NOW)
    return out


def test_clients_of_one_server_take_turns_whatever_their_backlog():
    queues: FairQueues[str] = FairQueues(1 << 20)
    queues.add(1, cap=1, per_client=1000)
    for i in range(400):
        queues.push(1, b"greedy", f"g{i}", 10, NOW)
    queues.push(1, b"polite", "p0", 10, NOW)
    first = queues.pop()
    queues.done(1, b"greedy", NOW)
    second = queues.pop()
    # The greedy client's 400 wait their turn: the polite one is second.
    assert (first, second) == ((1, b"greedy", "g0"), (1, b"polite", "p0"))


def test_servers_with_work_take_turns():
    queues: FairQueues[str] = FairQueues(1 << 20)
    queues.add(1, cap=8, per_client=100)
    queues.add(2, cap=8, per_client=100)
    for i in range(3):
        queues.push(1, b"c", f"a{i}", 1, NOW)
    queues.push(2, b"c", "b0", 1, NOW)
    assert [item for _, _, item in drain(queues)] == ["a0", "b0", "a1", "a2"]


def test_a_server_runs_at_most_its_cap_and_resumes_when_one_finishes():
    queues: FairQueues[str] = FairQueues(1 << 20)
    queues.add(1, cap=2, per_client=100)
    for i in range(5):
        queues.push(1, b"c", f"r{i}", 1, NOW)
    assert queues.pop() is not None
    assert queues.pop() is not None
    assert queues.pop() is None
    assert not queues.runnable
    assert queues.waiting == 3
    queues.done(1, b"c", NOW)
    assert queues.runnable
    assert queues.pop() == (1, b"c", "r2")


def test_the_per_client_bound_refuses_only_that_client():
    queues: FairQueues[str] = FairQueues(1 << 20)
    queues.add(1, cap=1, per_client=3)
    for i in range(3):
        assert queues.admit(1, b"a", 1) is Admission.OK
        queues.push(1, b"a", f"a{i}", 1, NOW)
    assert queues.admit(1, b"a", 1) is Admission.CLIENT_FULL
    assert queues.admit(1, b"b", 1) is Admission.OK
    queues.pop()
    assert queues.admit(1, b"a", 1) is Admission.OK


def test_the_byte_bound_counts_every_server_and_frees_on_pop():
    queues: FairQueues[str] = FairQueues(100)
    queues.add(1, cap=1, per_client=100)
    queues.add(2, cap=1, per_client=100)
    queues.push(1, b"a", "x", 60, NOW)
    assert queues.admit(2, b"b", 50) is Admission.BYTES_FULL
    assert queues.admit(2, b"b", 40) is Admission.OK
    queues.pop()
    assert queues.queued_bytes == 0
    assert queues.admit(2, b"b", 50) is Admission.OK


def test_an_empty_transport_takes_one_request_larger_than_the_byte_bound():
    queues: FairQueues[str] = FairQueues(100)
    queues.add(1, cap=1, per_client=100)
    assert queues.admit(1, b"a", 500) is Admission.OK


def test_removing_a_server_gives_back_its_queue_and_ignores_late_answers():
    queues: FairQueues[str] = FairQueues(1 << 20)
    queues.add(1, cap=1, per_client=100)
    queues.push(1, b"a", "r0", 5, NOW)
    queues.push(1, b"b", "r1", 5, NOW)
    queues.pop()
    assert queues.remove(1) == [(b"b", "r1")]
    assert (queues.waiting, queues.queued_bytes) == (0, 0)
    queues.done(1, b"a", NOW)  # its running request answers after the removal
    assert queues.idle(1)
    assert queues.pop() is None


def test_idle_and_queued_for_report_one_server():
    queues: FairQueues[str] = FairQueues(1 << 20)
    queues.add(1, cap=1, per_client=100)
    assert queues.idle(1)
    queues.push(1, b"a", "r0", 1, NOW)
    queues.push(1, b"a", "r1", 1, NOW)
    assert (queues.idle(1), queues.queued_for(1, b"a"), queues.queued_for(1, b"z")) == (
        False,
        2,
        0,
    )
    queues.pop()
    assert not queues.runnable  # its cap: one at a time
    queues.done(1, b"a", NOW)
    queues.pop()
    queues.done(1, b"a", NOW)
    assert queues.idle(1)


def one_server(cap: int, linger: float = LINGER) -> FairQueues[str]:
    """Queues with one server (key 1) of ``cap`` workers and room for any backlog."""
    queues: FairQueues[str] = FairQueues(1 << 20, linger=linger)
    queues.add(1, cap=cap, per_client=1000)
    return queues


def backlog(queues: FairQueues[str], client: bytes, count: int) -> None:
    """``count`` requests of ``client`` for server 1, named after it: b"g" -> "g0", "g1"..."""
    for i in range(count):
        queues.push(1, client, f"{client.decode()[:1]}{i}", 1, NOW)


def pop_all(queues: FairQueues[str]) -> list[tuple[int, bytes, str]]:
    """Pop while anything may start, finishing nothing (so the caps bind)."""
    out = []
    while (picked := queues.pop()) is not None:
        out.append(picked)
    return out


def test_a_client_alone_runs_on_every_worker():
    queues = one_server(cap=4)
    backlog(queues, b"only", 10)
    assert len(pop_all(queues)) == 4
    # Another client long gone does not count: the one left has every worker again.
    queues.push(1, b"other", "x0", 1, NOW)
    queues.done(1, b"only", NOW)
    assert queues.pop() == (1, b"other", "x0")
    queues.done(1, b"other", NOW)
    later = NOW + LINGER
    queues.done(1, b"only", later)
    assert [item for _, _, item in pop_all(queues)] == ["o4", "o5"]
    assert not queues.runnable


def test_while_another_client_counts_one_worker_stays_free_for_it():
    queues = one_server(cap=4)
    backlog(queues, b"polite", 1)
    backlog(queues, b"greedy", 300)
    assert [c for _, c, _ in pop_all(queues)] == [b"polite", b"greedy", b"greedy", b"greedy"]
    assert not queues.runnable  # the greedy client's fourth would take the last worker
    queues.done(1, b"polite", NOW + 0.001)
    assert not queues.runnable  # polite is between two calls: it still counts
    # Its next call finds the worker free at once, not after a greedy call.
    queues.push(1, b"polite", "p1", 1, NOW + 0.010)
    assert queues.pop() == (1, b"polite", "p1")
    # A greedy call that ends frees a worker for the greedy client again.
    queues.done(1, b"greedy", NOW + 0.020)
    assert queues.pop() == (1, b"greedy", "g3")
    assert not queues.runnable


def test_a_worker_stays_free_for_each_other_client():
    queues = one_server(cap=4)
    backlog(queues, b"greedy", 300)
    backlog(queues, b"bomber", 1)
    backlog(queues, b"polite", 1)
    # Three clients count: the greedy client runs two, one worker for each other.
    assert sorted(c for _, c, _ in pop_all(queues)) == [b"bomber", b"greedy", b"greedy", b"polite"]
    queues.done(1, b"polite", NOW + 0.001)
    queues.done(1, b"bomber", NOW + 0.002)
    assert not queues.runnable  # both still count, between two of their calls
    backlog(queues, b"bomber", 1)
    assert queues.pop() == (1, b"bomber", "b0")
    # The polite client's next call still finds a worker free at once.
    queues.push(1, b"polite", "p1", 1, NOW + 0.010)
    assert queues.pop() == (1, b"polite", "p1")
    # Once both have stopped for LINGER, the greedy client takes every worker again.
    queues.done(1, b"polite", NOW + 0.020)
    queues.done(1, b"bomber", NOW + 0.020)
    queues.done(1, b"greedy", NOW + 0.020 + LINGER)
    assert [c for _, c, _ in pop_all(queues)] == [b"greedy"] * 3
    assert not queues.runnable


def test_the_reserve_ends_linger_after_the_other_client_stopped():
    queues = one_server(cap=4, linger=0.5)
    backlog(queues, b"polite", 1)
    backlog(queues, b"greedy", 300)
    pop_all(queues)
    queues.done(1, b"polite", NOW)
    queues.done(1, b"greedy", NOW + 0.4)
    assert len(pop_all(queues)) == 1  # back to three: polite still counts
    queues.done(1, b"greedy", NOW + 0.5)
    # Polite stopped 0.5 s ago: the greedy client alone takes every worker.
    assert [c for _, c, _ in pop_all(queues)] == [b"greedy", b"greedy"]
    assert not queues.runnable


def test_a_client_already_on_every_worker_keeps_them_until_they_end():
    queues = one_server(cap=4)
    backlog(queues, b"greedy", 10)
    assert len(pop_all(queues)) == 4
    queues.push(1, b"polite", "p0", 1, NOW)
    assert not queues.runnable  # nothing is preempted
    queues.done(1, b"greedy", NOW)
    assert queues.pop() == (1, b"polite", "p0")
    queues.done(1, b"greedy", NOW)
    assert queues.pop() == (1, b"greedy", "g4")  # its third, beside polite's
    queues.done(1, b"polite", NOW)
    # Three greedy calls with polite counted: the freed worker waits for polite.
    assert not queues.runnable


def test_with_one_or_two_workers_no_worker_idles_while_clients_wait():
    for cap in (1, 2):
        queues = one_server(cap)
        backlog(queues, b"a", 5)
        backlog(queues, b"b", 5)
        started = pop_all(queues)
        # Each client at most max(1, cap - 1) at once, and every worker busy.
        assert len(started) == cap
        assert {c for _, c, _ in started} == ({b"a"} if cap == 1 else {b"a", b"b"})


def test_timer_ticks_do_not_count_as_another_client():
    queues = one_server(cap=2)
    queues.push(1, b"", "tick", 0, NOW)
    backlog(queues, b"publisher", 4)
    assert [c for _, c, _ in pop_all(queues)] == [b"", b"publisher"]
    queues.done(1, b"", NOW)
    # The tick is over: the publisher alone has both workers.
    assert queues.pop() == (1, b"publisher", "p1")


class Model:
    """What the test knows of one server's clients: queued, running, and when each left."""

    def __init__(self, clients: list[bytes]) -> None:
        self.queued: dict[bytes, int] = dict.fromkeys(clients, 0)
        self.running: list[bytes] = []
        self.left_at: dict[bytes, float] = {}

    def check_idle_workers(self, cap: int, linger: float, now: float) -> None:
        """Workers idle while work is queued: only the reserve for another counted client."""
        if not any(self.queued.values()) or len(self.running) >= cap:
            return
        busy = {c for c, n in self.queued.items() if n} | set(self.running)
        gone = {c for c, t in self.left_at.items() if c not in busy and now - t < linger}
        # The empty client (timer ticks) never counts.
        counted = len({c for c in busy | gone if c})
        assert counted > 1
        for client, queued in self.queued.items():
            if queued:
                assert self.running.count(client) >= max(1, cap + 1 - counted), client


@pytest.mark.parametrize("cap", [1, 2, 3, 4, 8])
def test_random_traffic_is_exact_conserving_and_loses_nothing(cap):
    """Random pushes and ends at random times against `Model`.

    After every step: `runnable` says exactly whether `pop` finds a request;
    a worker idles while work is queued only for the reserve; and every
    request pushed starts exactly once.
    """
    rng = random.Random(19 + cap)  # noqa: S311 - a reproducible test, not a secret
    linger = 0.05
    queues: FairQueues[str] = FairQueues(1 << 30, linger=linger)
    queues.add(1, cap=cap, per_client=10_000)
    model = Model([b"c0", b"c1", b"c2", b""])
    now = NOW
    started: list[str] = []
    pushed: list[str] = []
    for step in range(3000):
        now += rng.choice((0.0, 0.001, 0.01, 0.03))
        if rng.random() < 0.5 or not model.running:
            client = rng.choice(list(model.queued))
            queues.push(1, client, f"{step}", 1, now)
            model.queued[client] += 1
            pushed.append(f"{step}")
        else:
            client = model.running.pop(rng.randrange(len(model.running)))
            queues.done(1, client, now)
            if not model.queued[client] and client not in model.running:
                model.left_at[client] = now
        while queues.runnable:
            picked = queues.pop()
            assert picked is not None
            model.queued[picked[1]] -= 1
            model.running.append(picked[1])
            started.append(picked[2])
        assert queues.pop() is None
        assert len(model.running) <= cap
        model.check_idle_workers(cap, linger, now)
    for client in model.running:
        queues.done(1, client, now + 1)
    started += [item for _, _, item in drain(queues)]
    assert sorted(started) == sorted(pushed)
