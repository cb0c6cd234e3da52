"""A forked child uses an inherited transport with new actors, and leaves the parent's alone."""

from __future__ import annotations

import contextlib
import gc
import os
import threading
import time

import pykka
import pytest
import zmq

import zmqactors as za
from zmqactors.net.context import get_context

pytestmark = pytest.mark.fork

TIMEOUT = 10.0
# A child's first use creates its own ZeroMQ context, which lives as long as
# the child (an epoll descriptor and a few eventfds); nothing else may remain.
CONTEXT_FDS = 8


class Background:
    """A thread calling the parent's server until stopped, counting calls and failures."""

    def __init__(self, client: za.RPCClient) -> None:
        self.client = client
        self.calls = 0
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="background-caller")
        self._thread.start()

    def _run(self) -> None:
        i = 0
        while not self._stop.is_set():
            try:
                if self.client.call("echo", value=i) != i:
                    self.errors.append(f"wrong reply to {i}")
                self.calls += 1
            except Exception as exc:  # noqa: BLE001 - every failure is a test failure
                self.errors.append(f"{type(exc).__name__}: {exc}")
            i += 1

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(TIMEOUT)
        assert not self._thread.is_alive()
        assert self.errors == []
        assert self.calls > 0


class Notifications:
    def __init__(self) -> None:
        self.events: list[object] = []

    def info(self, publisher_id, event_type, payload, metadata):  # noqa: ARG002 - the endpoint signature
        self.events.append([publisher_id, event_type, payload])


def test_child_builds_new_actors_and_everything_works_there(
    transport, serve, fork_child, kit, endpoint_class
):
    serve("child.parent", "parent")
    heard = Notifications()
    listener = za.NotificationListener(transport, [za.Target("child.events")], [heard])
    listener.start()
    client = za.RPCClient(transport, za.Target("child.parent"), timeout=TIMEOUT)
    assert client.call("pid") == os.getpid()
    parent_actors = transport._holder.actors
    background = Background(client)

    def child(channel):
        fds = kit.open_fds()
        report = {
            "threads": kit.other_threads(),
            "registry": len(pykka.ActorRegistry.get_all()),
        }
        # Nothing of the parent's runs here, so stopping "everything" is instant.
        started = time.monotonic()
        report["stop_all"] = pykka.ActorRegistry.stop_all(timeout=TIMEOUT)
        report["stop_all_fast"] = time.monotonic() - started < 1.0
        # Calls and casts to the parent's server, through the inherited transport.
        report["parent_pid"] = client.call("pid")
        client.cast("record", value="from child")
        report["new_actors"] = transport._holder.actors is not parent_actors
        # A server of the child's own, called from the child and from the parent.
        with za.RPCServer(transport, za.Target("child.child", server="c"), [endpoint_class("c")]):
            report["own_server"] = za.RPCClient(transport, za.Target("child.child")).call("pid")
            channel.send("serving")
            assert channel.recv() == "done"
        # Notifications: to the parent's listener, and to one of the child's own.
        mine = Notifications()
        with za.NotificationListener(transport, [za.Target("child.mine")], [mine]):
            za.Notifier(transport, "child", topics=("child.events", "child.mine")).info(
                "child.event", {"pid": os.getpid()}
            )
            kit.wait_until(lambda: mine.events, "the child's own notification")
        report["own_notification"] = mine.events
        transport.close()
        kit.wait_until(lambda: not kit.other_threads(), "the child's actor threads to end")
        report["threads_after"] = kit.other_threads()
        # ZeroMQ's reaper closes sockets' descriptors asynchronously.
        with contextlib.suppress(AssertionError):
            kit.wait_until(lambda: kit.open_fds() - fds <= CONTEXT_FDS, "descriptors to close")
        report["fds_grown"] = kit.open_fds() - fds
        return report

    proc = fork_child(child)
    assert proc.recv() == "serving"
    # The parent reaches the child's server too.
    assert za.RPCClient(transport, za.Target("child.child")).call("pid") == proc.pid
    proc.send("done")
    report = proc.join()
    background.stop()

    assert report.pop("fds_grown") <= CONTEXT_FDS
    assert report == {
        "threads": [],
        "registry": 0,
        "stop_all": [],
        "stop_all_fast": True,
        "parent_pid": os.getpid(),
        "new_actors": True,
        "own_server": proc.pid,
        "own_notification": [["child", "child.event", {"pid": proc.pid}]],
        "threads_after": [],
    }
    # What the child sent the parent arrived; the parent's transport is intact.
    kit.wait_until(lambda: client.call("recorded") == ["from child"], "the child's cast")
    kit.wait_until(lambda: heard.events, "the child's notification")
    assert heard.events == [["child", "child.event", {"pid": proc.pid}]]
    assert transport._holder.actors is parent_actors
    assert not transport.closed
    assert client.call("pid") == os.getpid()
    listener.stop()
    listener.wait(timeout=TIMEOUT)


def spy_on_parent(parent_context: zmq.Context) -> list[str]:
    """In a child: record every send, close or term on the parent's context or sockets."""
    touched: list[str] = []

    def spy(cls, name, is_parents):
        original = getattr(cls, name)

        def wrapper(self, *args, **kwargs):
            if is_parents(self):
                touched.append(f"{cls.__name__}.{name}")
            return original(self, *args, **kwargs)

        setattr(cls, name, wrapper)

    for name in ("send", "send_multipart", "close", "disconnect", "unbind"):
        spy(zmq.Socket, name, lambda sock: sock.context is parent_context)
    for name in ("term", "destroy"):
        spy(zmq.Context, name, lambda ctx: ctx is parent_context)
    return touched


def test_child_never_touches_the_parents_context_or_sockets(transport, serve, fork_child):
    server = serve("child.spy", "parent")
    client = za.RPCClient(transport, za.Target("child.spy"), timeout=TIMEOUT)
    assert client.call("pid") == os.getpid()
    parent_context = get_context()
    parent_sockets = list(parent_context._sockets)
    assert parent_sockets
    background = Background(client)

    def child(_channel):
        touched = spy_on_parent(parent_context)
        # Use the inherited transport, close it, and drop everything inherited.
        assert client.call("pid") == os.getppid()
        with za.RPCServer(transport, za.Target("child.spy.child"), [object()]):
            pass
        transport.close()
        pykka.ActorRegistry.stop_all(timeout=TIMEOUT)
        gc.collect()
        return {"touched": touched, "parent_context_closed": parent_context.closed}

    # Several children, one after the other and two at once.
    for _ in range(3):
        assert fork_child(child).join() == {"touched": [], "parent_context_closed": False}
    pair = [fork_child(child), fork_child(child)]
    for proc in pair:
        assert proc.join() == {"touched": [], "parent_context_closed": False}
    background.stop()
    assert not parent_context.closed
    assert not any(sock.closed for sock in parent_sockets)
    assert server.state == "running"
    assert client.prepare(server="parent").call("pid") == os.getpid()


def test_child_closing_an_inherited_transport_waits_for_nothing(transport, serve, fork_child):
    serve("child.close", "parent")
    client = za.RPCClient(transport, za.Target("child.close"), timeout=TIMEOUT)
    assert client.call("pid") == os.getpid()

    def child(_channel):
        # The parent's actors have no thread here: close() must not wait for them.
        started = time.monotonic()
        transport.close()
        transport.close()
        elapsed = time.monotonic() - started
        try:
            client.call("pid")
        except za.TransportClosedError:
            refused = True
        else:
            refused = False
        return {"fast": elapsed < 1.0, "refused": refused}

    assert fork_child(child).join() == {"fast": True, "refused": True}
    assert not transport.closed
    assert client.call("pid") == os.getpid()


def test_inherited_server_does_not_serve_in_the_child_until_started_there(
    transport, serve, fork_child
):
    server = serve("child.inherit", "shared")
    client = za.RPCClient(transport, za.Target("child.inherit"), timeout=TIMEOUT)
    direct = client.prepare(server="shared")
    assert direct.call("pid") == os.getpid()
    parent_address = server.address

    def child(channel):
        report = {"state": server.state, "address": server.address}
        # stop() and wait() on a server that does not run here do nothing...
        server.stop()
        server.wait(timeout=TIMEOUT)
        report["state_after_stop"] = server.state
        channel.send("stopped")
        assert channel.recv() == "checked"
        # ...and calls from the child still reach the parent's server only.
        report["before_start"] = sorted({direct.call("pid") for _ in range(6)})
        # start() starts it afresh here: a second instance beside the parent's.
        server.start()
        report["started"] = server.state
        report["new_address"] = server.address != parent_address
        seen: set[int] = set()
        deadline = time.monotonic() + TIMEOUT
        while len(seen) < 2 and time.monotonic() < deadline:
            seen.add(direct.call("pid"))
        report["after_start"] = sorted(seen)
        server.stop()
        server.wait(timeout=TIMEOUT)
        report["stopped"] = server.state
        transport.close()
        return report

    proc = fork_child(child)
    assert proc.recv() == "stopped"
    # The child's stop() left the parent's server running and registered.
    assert server.state == "running"
    assert (
        za.RPCClient(transport, za.Target("child.inherit")).prepare(server="shared").call("pid")
        == os.getpid()
    )
    proc.send("checked")
    report = proc.join()
    assert report == {
        "state": "new",
        "address": "",
        "state_after_stop": "new",
        "before_start": [os.getpid()],
        "started": "running",
        "new_address": True,
        "after_start": sorted([os.getpid(), proc.pid]),
        "stopped": "stopped",
    }
    # The child's stop() unregistered its own instance only.
    assert server.state == "running"
    assert server.address == parent_address
    fresh = za.RPCClient(za.Transport(transport.settings), za.Target("child.inherit"))
    try:
        assert {fresh.prepare(server="shared").call("pid") for _ in range(6)} == {os.getpid()}
    finally:
        fresh.transport.close()


class Held:
    """A thread of the parent holding ``lock`` until released: a fork lands in between."""

    def __init__(self, lock) -> None:
        self._lock = lock
        self._held = threading.Event()
        self._release = threading.Event()
        self._thread = threading.Thread(target=self._hold)
        self._thread.start()
        assert self._held.wait(TIMEOUT)

    def _hold(self) -> None:
        with self._lock:
            self._held.set()
            self._release.wait(TIMEOUT)

    def release(self) -> None:
        self._release.set()
        self._thread.join(TIMEOUT)
        assert not self._thread.is_alive()


def in_thread_within(func, seconds: float) -> bool:
    """Run ``func`` in a thread; whether it returned within ``seconds`` (a hang stays behind)."""
    done = threading.Event()

    def run() -> None:
        func()
        done.set()

    threading.Thread(target=run, daemon=True).start()
    return done.wait(seconds)


def test_fork_while_a_thread_counts_in_the_transports_stats(transport, fork_child):
    # Any actor thread may be counting (a late reply, a protocol error) at the fork.
    held = Held(transport.stats._lock)
    try:

        def child(_channel):
            notifier = za.Notifier(transport, "child", topics=("nobody.listens",))
            return {
                "snapshot": in_thread_within(transport.stats.snapshot, 2.0),
                # Counted as notifications_unrouted, from the child's own thread.
                "notify": in_thread_within(lambda: notifier.info("e", {}), 2.0),
            }

        assert fork_child(child).join() == {"snapshot": True, "notify": True}
    finally:
        held.release()
    assert "notifications_unrouted" not in transport.stats.snapshot()


def test_fork_while_a_thread_starts_or_stops_a_server(transport, fork_child, endpoint_class):
    server = za.RPCServer(transport, za.Target("child.starting"), [endpoint_class()])
    # As a parent thread inside server.start() or server.stop() holds it.
    held = Held(server._lock)
    try:

        def child(_channel):
            return {"start": in_thread_within(server.start, 2.0)}

        assert fork_child(child).join() == {"start": True}
    finally:
        held.release()
