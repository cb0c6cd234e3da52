"""Tests of the process context: one per process, replaced in a forked child."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
import time
import uuid
import warnings
from typing import Any

import pykka
import pytest
import zmq

from zmqactors.actors.base import SocketActor
from zmqactors.actors.doorbell import Doorbell
from zmqactors.actors.inbox import PollingInbox
from zmqactors.net import context as context_module
from zmqactors.net.context import get_context

pytestmark = pytest.mark.unit

TIMEOUT = 10.0


def inproc_round_trip(ctx: zmq.Context[Any], payload: bytes) -> bytes:
    """Send ``payload`` over an inproc PAIR pair on ``ctx`` and return what arrived."""
    address = f"inproc://test-context-{uuid.uuid4().hex}"
    a = ctx.socket(zmq.PAIR)
    b = ctx.socket(zmq.PAIR)
    try:
        a.setsockopt(zmq.LINGER, 0)
        b.setsockopt(zmq.LINGER, 0)
        a.bind(address)
        b.connect(address)
        a.send(payload)
        if not b.poll(int(TIMEOUT * 1000), zmq.POLLIN):
            msg = "inproc message did not arrive"
            raise AssertionError(msg)
        return b.recv(zmq.NOBLOCK)
    finally:
        a.close(linger=0)
        b.close(linger=0)


class Echo(SocketActor):
    actor_name = "echo"

    def on_receive(self, message: Any) -> Any:
        return ("echo", message)


# -- one context per process -------------------------------------------------------------


def test_same_context_twice():
    first = get_context()
    assert isinstance(first, zmq.Context)
    assert get_context() is first
    assert not first.closed


def contexts_from_threads(count: int) -> list[zmq.Context[Any]]:
    """What `get_context` returned to each of ``count`` threads calling it at once."""
    results: list[zmq.Context[Any]] = []
    lock = threading.Lock()
    barrier = threading.Barrier(count)

    def grab() -> None:
        barrier.wait(TIMEOUT)
        ctx = get_context()
        with lock:
            results.append(ctx)

    threads = [threading.Thread(target=grab) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT)
        assert not thread.is_alive()
    return results


def test_same_context_from_many_threads():
    main = get_context()
    results = contexts_from_threads(8)
    assert len(results) == 8
    assert all(ctx is main for ctx in results)


def test_first_creation_races_to_one_context(monkeypatch):
    # Start from "no context yet" so the threads race to create it.
    monkeypatch.setattr(context_module, "_context", None)
    monkeypatch.setattr(context_module, "_context_pid", 0)
    results = contexts_from_threads(16)
    try:
        assert len(results) == 16
        assert len({id(ctx) for ctx in results}) == 1
        assert get_context() is results[0]
    finally:
        for ctx in {id(c): c for c in results}.values():
            ctx.term()


def test_context_of_another_pid_is_replaced(monkeypatch):
    stale = zmq.Context()
    try:
        monkeypatch.setattr(context_module, "_context", stale)
        monkeypatch.setattr(context_module, "_context_pid", os.getpid() + 1_000_000)
        fresh = get_context()
        try:
            assert fresh is not stale
            assert get_context() is fresh
            assert not stale.closed  # not ours to close
        finally:
            fresh.term()
    finally:
        stale.term()


# -- fork ----------------------------------------------------------------------------


def kill_and_reap(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + TIMEOUT
    while os.waitpid(pid, os.WNOHANG)[0] != pid and time.monotonic() < deadline:
        time.sleep(0.005)


def fork_and_run(child: Any) -> tuple[int, dict[str, Any]]:
    """Fork; the child runs ``child()`` and reports its dict as JSON over a pipe.

    The parent reads with a deadline and reaps with ``WNOHANG`` in a loop, so a
    hung child fails the test instead of hanging it.
    """
    read_fd, write_fd = os.pipe()
    with warnings.catch_warnings():
        # Python 3.12+ warns about forking a multi-threaded process: that is the point here.
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        code = 0
        try:
            os.close(read_fd)
            try:
                report = child()
            except BaseException as exc:  # noqa: BLE001 - anything must reach the parent
                report = {"error": f"{type(exc).__name__}: {exc}"}
                code = 1
            os.write(write_fd, json.dumps(report).encode())
            os.close(write_fd)
        finally:
            os._exit(code)
    os.close(write_fd)
    deadline = time.monotonic() + TIMEOUT
    status = None
    chunks = []
    os.set_blocking(read_fd, False)
    try:
        while True:
            with contextlib.suppress(BlockingIOError):
                chunk = os.read(read_fd, 65536)
                if chunk:
                    chunks.append(chunk)
            if status is None:
                done_pid, status_value = os.waitpid(pid, os.WNOHANG)
                if done_pid == pid:
                    status = status_value
            if status is not None:
                with contextlib.suppress(BlockingIOError):
                    while chunk := os.read(read_fd, 65536):
                        chunks.append(chunk)
                break
            if time.monotonic() > deadline:
                kill_and_reap(pid)
                pytest.fail("the forked child did not finish in time")
            time.sleep(0.005)
    finally:
        os.close(read_fd)
    data = b"".join(chunks)
    return os.waitstatus_to_exitcode(status), json.loads(data) if data else {}


@pytest.fixture
def running_actor():
    ref = Echo.start()
    try:
        assert ref.ask("ready", timeout=TIMEOUT) == ("echo", "ready")
        yield ref
    finally:
        ref.stop(timeout=TIMEOUT)


def test_forked_child_gets_its_own_context(running_actor):
    parent_ctx = get_context()
    parent_inbox = running_actor.actor_inbox
    assert isinstance(parent_inbox, PollingInbox)
    bell_fd = parent_inbox.doorbell.fileno()
    spare_bell = Doorbell()
    try:
        assert running_actor in pykka.ActorRegistry.get_all()

        def child() -> dict[str, Any]:
            report: dict[str, Any] = {}
            # Inherited descriptors first, before anything new can reuse their numbers.
            report["bell_closed"] = parent_inbox.doorbell._closed
            report["spare_closed"] = spare_bell._closed
            try:
                os.fstat(bell_fd)
            except OSError:
                report["bell_fd_open"] = False
            else:
                report["bell_fd_open"] = True
            report["registry"] = [str(ref) for ref in pykka.ActorRegistry.get_all()]
            ctx = get_context()
            report["new_context"] = ctx is not parent_ctx
            report["stable_in_child"] = get_context() is ctx
            report["parent_ctx_closed"] = parent_ctx.closed
            report["round_trip"] = inproc_round_trip(ctx, b"child").decode()
            # An actor started in the child works there.
            ref = Echo.start()
            try:
                report["child_actor"] = list(ref.ask("hi", timeout=TIMEOUT))
            finally:
                ref.stop(timeout=TIMEOUT)
            report["registry_after"] = len(pykka.ActorRegistry.get_all())
            ctx.term()
            return report

        code, report = fork_and_run(child)
        assert code == 0, report
        assert report == {
            "bell_closed": True,
            "spare_closed": True,
            "bell_fd_open": False,
            "registry": [],
            "new_context": True,
            "stable_in_child": True,
            "parent_ctx_closed": False,
            "round_trip": "child",
            "child_actor": ["echo", "hi"],
            "registry_after": 0,
        }

        # The parent is untouched by all of that.
        assert get_context() is parent_ctx
        assert not parent_ctx.closed
        assert inproc_round_trip(parent_ctx, b"parent") == b"parent"
        assert not parent_inbox.doorbell._closed
        assert not spare_bell._closed
        os.fstat(bell_fd)
        assert running_actor.ask("after-fork", timeout=TIMEOUT) == ("echo", "after-fork")
        assert running_actor in pykka.ActorRegistry.get_all()
    finally:
        spare_bell.close()


def test_fork_reporting_catches_child_failures():
    # So a child that fails cannot pass for one that reported success.
    def child() -> dict[str, Any]:
        msg = "child failed on purpose"
        raise RuntimeError(msg)

    code, report = fork_and_run(child)
    assert code == 1
    assert report == {"error": "RuntimeError: child failed on purpose"}


def test_fork_while_another_thread_holds_the_context_lock():
    # The child must not inherit a held lock: its first get_context() would hang.
    held = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with context_module._lock:
            held.set()
            release.wait(TIMEOUT)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert held.wait(TIMEOUT)

        def child() -> dict[str, Any]:
            done: list[bool] = []
            worker = threading.Thread(target=lambda: done.append(get_context() is not None))
            worker.start()
            worker.join(5)
            return {"got_context": done == [True]}

        code, report = fork_and_run(child)
        assert code == 0, report
        assert report == {"got_context": True}
    finally:
        release.set()
        holder.join(TIMEOUT)
    assert not holder.is_alive()
