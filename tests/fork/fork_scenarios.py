"""What the fork suite runs in other processes: multiprocessing targets and whole scripts.

Imported by name (``fork_scenarios``) from children that multiprocessing
starts, and run as ``python fork_scenarios.py SCENARIO ...`` in a fresh
interpreter where a scenario needs a process of its own (exit paths, signals,
``sys.modules``). A script prints one JSON line with what it saw.
"""

from __future__ import annotations

import contextlib
import faulthandler
import inspect
import json
import logging
import os
import signal
import socket
import sys
import threading
import time
import warnings
from typing import TYPE_CHECKING, Any

import structlog

import zmqactors as za

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

TIMEOUT = 10.0
# Set by a test before it forks (multiprocessing "fork", ProcessPoolExecutor):
# the inherited transport. None in a spawned or forkserver child.
TRANSPORT: za.Transport | None = None
# A worker's own transport where none was inherited, made on first use.
_OWN: za.Transport | None = None


class Endpoint:
    """The servers' endpoint."""

    def pid(self) -> int:
        return os.getpid()

    def sleep(self, seconds: float) -> float:
        time.sleep(seconds)
        return seconds


def _transport(url: str) -> za.Transport:
    global _OWN  # noqa: PLW0603 - one transport per worker process, kept between tasks
    if TRANSPORT is not None:
        return TRANSPORT
    if _OWN is None:
        _OWN = za.Transport.from_url(url)
    return _OWN


def mp_target(conn: Connection, url: str, topic: str) -> None:
    """A multiprocessing target: call the parent's server, serve and call one's own, return.

    Leaves the transport open and its actors running: returning from the
    target must end the process anyway.
    """
    transport = _transport(url)
    client = za.RPCClient(transport, za.Target(topic), timeout=TIMEOUT)
    own_topic = f"{topic}.{os.getpid()}"
    server = za.RPCServer(transport, za.Target(own_topic), [Endpoint()], executor_size=2)
    server.start()
    own = za.RPCClient(transport, za.Target(own_topic), timeout=TIMEOUT)
    conn.send(
        {
            "pid": os.getpid(),
            "inherited": TRANSPORT is not None,
            "parent": client.call("pid"),
            "own": own.call("pid"),
        }
    )
    conn.close()
    # Something in flight as the process ends.
    own.call_async("sleep", seconds=5)


def pool_task(url: str, topic: str, n: int) -> dict[str, Any]:
    """A ProcessPoolExecutor task: one call to the parent's server."""
    client = za.RPCClient(_transport(url), za.Target(topic), timeout=TIMEOUT)
    return {
        "n": n,
        "worker": os.getpid(),
        "server": client.call("pid"),
        "inherited": TRANSPORT is not None,
    }


# -- scripts -------------------------------------------------------------------------------


def _fork() -> int:
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore",
            message=r".*multi-threaded, use of fork\(\) may lead to deadlocks",
            category=DeprecationWarning,
        )
        return os.fork()


def _reap(pid: int, timeout: float) -> int | None:
    """The child's exit code, or None (and the child killed) after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.005)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return None


def child_exit(url: str, mode: str, use: str) -> None:
    """Fork a child that leaves by ``mode``; report its status, then exit without close().

    ``use`` is ``used`` (the child calls, serves and leaves a call in flight)
    or ``untouched`` (the child never uses the inherited transport).
    """
    transport = za.Transport.from_url(url)
    server = za.RPCServer(
        transport, za.Target("exit", server="parent"), [Endpoint()], executor_size=2
    )
    server.start()
    client = za.RPCClient(transport, za.Target("exit"), timeout=TIMEOUT)
    client.call("pid")
    in_flight = client.call_async("sleep", seconds=0.5)
    pid = _fork()
    if pid == 0:
        if use == "used":
            client.call("pid")
            mine = za.RPCServer(transport, za.Target("exit.child"), [Endpoint()], executor_size=2)
            mine.start()
            za.RPCClient(transport, za.Target("exit.child")).call_async("sleep", seconds=5)
        if mode == "sys.exit":
            sys.exit(7)
        if mode == "os._exit":
            os._exit(8)
        if mode == "exception":
            msg = "the child fails on purpose"
            raise RuntimeError(msg)
        return  # "return": the end of the script, the interpreter's own shutdown
    started = time.monotonic()
    code = _reap(pid, TIMEOUT)
    report = {
        "child": code,
        "seconds": round(time.monotonic() - started, 3),
        "in_flight": in_flight.result(timeout=TIMEOUT),
    }
    print(json.dumps(report), flush=True)
    # The parent too ends without close(): a server running, a call in flight.
    client.call_async("sleep", seconds=5)


def no_eventlet(url: str) -> None:
    """Use clients and servers; report which green-thread libraries got imported."""
    transport = za.Transport.from_url(url)
    with transport, za.RPCServer(transport, za.Target("green"), [Endpoint()], executor_size=2):
        client = za.RPCClient(transport, za.Target("green"), timeout=TIMEOUT)
        client.call("pid")
        client.cast("pid")
        client.call_async("pid").result(timeout=TIMEOUT)
    # (structlog imports greenlet when it is installed, for its context variables:
    # that is neither eventlet nor monkey patching.)
    green = sorted(name for name in sys.modules if name.split(".")[0] in {"eventlet", "gevent"})
    patched = {
        "threading.Thread": threading.Thread.__module__,
        "socket.socket": socket.socket.__module__,
        "time.sleep": type(time.sleep).__name__,
    }
    print(json.dumps({"green": green, "patched": patched}), flush=True)


def signal_close(url: str) -> None:
    """A SIGUSR1 handler closes the transport while two threads call in a loop."""
    transport = za.Transport.from_url(url)
    server = za.RPCServer(transport, za.Target("signal"), [Endpoint()], executor_size=2)
    server.start()
    client = za.RPCClient(transport, za.Target("signal"), timeout=TIMEOUT)
    signal.signal(signal.SIGUSR1, lambda *_: transport.close())
    outcomes: dict[str, Any] = {}

    def call_until_closed(name: str) -> None:
        calls = 0
        try:
            while True:
                client.call("pid")
                calls += 1
        except za.TransportClosedError:
            outcomes[name] = calls
        except Exception as exc:  # noqa: BLE001 - reported, and the test fails on it
            outcomes[name] = f"{type(exc).__name__}: {exc}"

    worker = threading.Thread(target=call_until_closed, args=("thread",))
    worker.start()
    threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGUSR1)).start()
    call_until_closed("main")
    worker.join(TIMEOUT)
    _report_when_alone(transport, server, outcomes=outcomes)


def _report_when_alone(transport: za.Transport, server: za.RPCServer, **outcome: Any) -> None:
    """Print ``outcome``, the transport's and server's state and the threads left, as JSON.

    Waits (up to TIMEOUT) for every other thread to end first: the test reads
    which ones did not.
    """
    deadline = time.monotonic() + TIMEOUT
    while threading.active_count() > 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    report = {
        **outcome,
        "closed": transport.closed,
        "server": server.state,
        "threads": sorted(t.name for t in threading.enumerate()),
    }
    print(json.dumps(report), flush=True)


def _signal_inside(where: str) -> None:
    """Make SIGUSR1 arrive while the main thread is inside ``where`` (holding its locks)."""
    from zmqactors.transport import runtime  # noqa: PLC0415 - white-box, this script only
    from zmqactors.transport.service import Service  # noqa: PLC0415

    def after(owner: Any, name: str) -> None:
        original = getattr(owner, name)

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            result = original(*args, **kwargs)
            # The handler runs right here, in this thread, before the next line.
            signal.raise_signal(signal.SIGUSR1)
            return result

        # A classmethod comes back bound: keep it bound to its class.
        setattr(owner, name, staticmethod(wrapper) if inspect.ismethod(original) else wrapper)

    if where == "actors":
        after(runtime.Runtime, "start")
    elif where == "poller":
        after(runtime.Poller, "start")
    elif where == "server-start":
        after(za.RPCServer, "_handler")
    elif where == "server-stop":
        after(Service, "_unregister")


def signal_close_inside(url: str, where: str) -> None:
    """A SIGUSR1 handler closes the transport while the main thread is inside ``where``."""
    # A deadlock ends the script (with every thread's stack) instead of the test's time.
    faulthandler.dump_traceback_later(8, exit=True)
    transport = za.Transport.from_url(url)
    signal.signal(signal.SIGUSR1, lambda *_: transport.close())
    server = za.RPCServer(transport, za.Target("inside"), [Endpoint()], executor_size=2)
    client = za.RPCClient(transport, za.Target("inside"), timeout=TIMEOUT)
    if where != "actors":
        with contextlib.suppress(za.NoRespondersError):
            client.call("pid")  # starts the transport's actors
    _signal_inside(where)
    outcome = "not closed"
    try:
        server.start()
        client.call("pid")
        server.stop()
        server.wait(timeout=TIMEOUT)
    except za.TransportClosedError:
        outcome = "closed"
    _report_when_alone(transport, server, outcome=outcome)
    faulthandler.cancel_dump_traceback_later()


SCRIPTS = {
    "child-exit": child_exit,
    "no-eventlet": no_eventlet,
    "signal-close": signal_close,
    "signal-close-inside": signal_close_inside,
}


def main() -> None:
    """``python fork_scenarios.py SCENARIO ARGS...``."""
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    name, *args = sys.argv[1:]
    SCRIPTS[name](*args)


if __name__ == "__main__":
    main()
