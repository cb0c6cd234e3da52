"""`FairQueues` without sockets: round robin over servers and clients, caps and bounds."""

from __future__ import annotations

import pytest

from zmqactors.core.fairness import Admission, FairQueues

pytestmark = pytest.mark.unit


def drain(queues: FairQueues[str]) -> list[tuple[int, bytes, str]]:
    """Pop everything runnable, finishing each at once (so caps never bind)."""
    out = []
    while (picked := queues.pop()) is not None:
        out.append(picked)
        queues.done(picked[0])
    return out


def test_clients_of_one_server_take_turns_whatever_their_backlog():
    queues: FairQueues[str] = FairQueues(1 << 20)
    queues.add(1, cap=1, per_client=1000)
    for i in range(400):
        queues.push(1, b"greedy", f"g{i}", 10)
    queues.push(1, b"polite", "p0", 10)
    first = queues.pop()
    queues.done(1)
    second = queues.pop()
    # The greedy client's 400 wait their turn: the polite one is second.
    assert (first, second) == ((1, b"greedy", "g0"), (1, b"polite", "p0"))


def test_servers_with_work_take_turns():
    queues: FairQueues[str] = FairQueues(1 << 20)
    queues.add(1, cap=8, per_client=100)
    queues.add(2, cap=8, per_client=100)
    for i in range(3):
        queues.push(1, b"c", f"a{i}", 1)
    queues.push(2, b"c", "b0", 1)
    assert [item for _, _, item in drain(queues)] == ["a0", "b0", "a1", "a2"]


def test_a_server_runs_at_most_its_cap_and_resumes_when_one_finishes():
    queues: FairQueues[str] = FairQueues(1 << 20)
    queues.add(1, cap=2, per_client=100)
    for i in range(5):
        queues.push(1, b"c", f"r{i}", 1)
    assert queues.pop() is not None
    assert queues.pop() is not None
    assert queues.pop() is None
    assert not queues.runnable
    assert queues.waiting == 3
    queues.done(1)
    assert queues.runnable
    assert queues.pop() == (1, b"c", "r2")


def test_the_per_client_bound_refuses_only_that_client():
    queues: FairQueues[str] = FairQueues(1 << 20)
    queues.add(1, cap=1, per_client=3)
    for i in range(3):
        assert queues.admit(1, b"a", 1) is Admission.OK
        queues.push(1, b"a", f"a{i}", 1)
    assert queues.admit(1, b"a", 1) is Admission.CLIENT_FULL
    assert queues.admit(1, b"b", 1) is Admission.OK
    queues.pop()
    assert queues.admit(1, b"a", 1) is Admission.OK


def test_the_byte_bound_counts_every_server_and_frees_on_pop():
    queues: FairQueues[str] = FairQueues(100)
    queues.add(1, cap=1, per_client=100)
    queues.add(2, cap=1, per_client=100)
    queues.push(1, b"a", "x", 60)
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
    queues.push(1, b"a", "r0", 5)
    queues.push(1, b"b", "r1", 5)
    queues.pop()
    assert queues.remove(1) == [(b"b", "r1")]
    assert (queues.waiting, queues.queued_bytes) == (0, 0)
    queues.done(1)  # its running request answers after the removal
    assert queues.idle(1)
    assert queues.pop() is None


def test_idle_and_queued_for_report_one_server():
    queues: FairQueues[str] = FairQueues(1 << 20)
    queues.add(1, cap=1, per_client=100)
    assert queues.idle(1)
    queues.push(1, b"a", "r0", 1)
    queues.push(1, b"a", "r1", 1)
    assert (queues.idle(1), queues.queued_for(1, b"a"), queues.queued_for(1, b"z")) == (
        False,
        2,
        0,
    )
    queues.pop()
    assert not queues.runnable  # its cap: one at a time
    queues.done(1)
    queues.pop()
    queues.done(1)
    assert queues.idle(1)
