"""Fixtures of the fork suite: forked children with deadlines, helper processes, leak probes.

Every blocking step has a deadline. A forked child runs a function and always
ends in ``os._exit`` (it must never return into pytest); the parent reads its
messages and its exit status with a deadline and kills it if it overstays.
Test modules cannot import each other (``--import-mode=importlib``), so the
helpers are fixtures; ``fork_scenarios.py`` holds what other processes import
or run (multiprocessing targets, scripts run in a fresh interpreter).
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
import traceback
import types
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

import zmqactors as za
from tests.helpers import Recorder, wait_until

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

# The deadline of every blocking step of the suite.
TIMEOUT = 10.0
HERE = Path(__file__).parent
SCENARIOS = HERE / "fork_scenarios.py"
EXAMPLES = HERE.parent.parent / "examples"


@contextlib.contextmanager
def fork_warning_ignored() -> Iterator[None]:
    """Silence Python 3.12+'s warning about fork() in a multi-threaded process.

    Forking a process with threads is what this suite tests; pytest's
    ``filterwarnings = error`` would otherwise turn the warning into an error.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore",
            message=r".*multi-threaded, use of fork\(\) may lead to deadlocks",
            category=DeprecationWarning,
        )
        yield


def fork() -> int:
    """``os.fork()`` without the multi-threaded fork warning."""
    with fork_warning_ignored():
        return os.fork()


def open_fds() -> int:
    """How many file descriptors this process has open."""
    return sum(1 for _ in Path("/proc/self/fd").iterdir())


def other_threads() -> list[str]:
    """The names of the live threads other than the calling one."""
    me = threading.current_thread()
    return sorted(t.name for t in threading.enumerate() if t is not me)


class Channel:
    """JSON lines over a pair of pipes; one end in the parent, the other in a child."""

    def __init__(self, read_fd: int, write_fd: int) -> None:
        self._read_fd = read_fd
        self._write_fd = write_fd
        self._buffer = b""
        self._eof = False

    def send(self, message: object) -> None:
        """Send one JSON-encodable message."""
        data = (json.dumps(message) + "\n").encode()
        view = memoryview(data)
        while view:
            view = view[os.write(self._write_fd, view) :]

    def recv(self, timeout: float = TIMEOUT) -> Any:
        """The next message; raise ``EOFError`` at end of stream, ``TimeoutError`` on timeout."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            if self._eof:
                raise EOFError
            left = deadline - time.monotonic()
            if left <= 0:
                msg = f"no message within {timeout}s"
                raise TimeoutError(msg)
            ready, _, _ = select.select([self._read_fd], [], [], left)
            if ready:
                chunk = os.read(self._read_fd, 65536)
                self._buffer += chunk
                self._eof = not chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return json.loads(line)

    def close(self) -> None:
        """Close both ends held by this process."""
        for fd in (self._read_fd, self._write_fd):
            with contextlib.suppress(OSError):
                os.close(fd)


class Child:
    """A forked child running ``body(channel)``; its return value is its report.

    The child always ends with ``os._exit``: 0 after sending ``{"result":
    body's return}``, 1 after sending ``{"error": traceback}``. The parent
    talks to it with `send`/`recv` and collects it with `join`.
    """

    def __init__(self, body: Callable[[Channel], object]) -> None:
        down_r, down_w = os.pipe()
        up_r, up_w = os.pipe()
        pid = fork()
        if pid == 0:  # pragma: no cover - the child
            _run_child(body, Channel(down_r, up_w), (down_w, up_r))
        os.close(down_r)
        os.close(up_w)
        self.pid = pid
        self.channel = Channel(up_r, down_w)
        self.exitcode: int | None = None

    def send(self, message: object) -> None:
        """Send a message to the child."""
        self.channel.send(message)

    def recv(self, timeout: float = TIMEOUT) -> Any:
        """The child's next message (not its final report); fail after ``timeout``."""
        try:
            message = self.channel.recv(timeout)
        except (EOFError, TimeoutError) as exc:
            self.kill()
            pytest.fail(f"child {self.pid}: no message ({type(exc).__name__}: {exc})")
        if isinstance(message, dict) and "error" in message:
            self.kill()
            pytest.fail(f"child {self.pid} failed:\n{message['error']}")
        return message

    def join(self, timeout: float = TIMEOUT) -> Any:
        """Wait for the child's report and exit; return the report. Fail on error or timeout."""
        deadline = time.monotonic() + timeout
        report: Any = None
        with contextlib.suppress(EOFError):
            while True:
                try:
                    message = self.channel.recv(max(0.0, deadline - time.monotonic()))
                except TimeoutError:
                    self.kill()
                    pytest.fail(f"child {self.pid} did not finish within {timeout}s")
                if isinstance(message, dict) and "error" in message:
                    self.wait_exit(deadline - time.monotonic())
                    pytest.fail(f"child {self.pid} failed:\n{message['error']}")
                if isinstance(message, dict) and "result" in message:
                    report = message["result"]
        code = self.wait_exit(deadline - time.monotonic())
        assert code == 0, f"child {self.pid} exited with {code}"
        return report

    def wait_exit(self, timeout: float = TIMEOUT) -> int:
        """Reap the child; kill it and fail if it has not exited within ``timeout`` s."""
        if self.exitcode is not None:
            return self.exitcode
        deadline = time.monotonic() + max(timeout, 0.0)
        while True:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid == self.pid:
                self.exitcode = os.waitstatus_to_exitcode(status)
                self.channel.close()
                return self.exitcode
            if time.monotonic() > deadline:
                self.kill()
                pytest.fail(f"child {self.pid} did not exit within {timeout}s")
            time.sleep(0.005)

    def kill(self) -> None:
        """SIGKILL and reap the child if it is still there."""
        if self.exitcode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            _, status = os.waitpid(self.pid, 0)
            self.exitcode = os.waitstatus_to_exitcode(status)
        self.channel.close()


def _run_child(
    body: Callable[[Channel], object], channel: Channel, parent_fds: tuple[int, ...]
) -> None:  # pragma: no cover - the child
    code = 1
    try:
        for fd in parent_fds:
            os.close(fd)
        result = body(channel)
        channel.send({"result": result})
        code = 0
    except BaseException:  # noqa: BLE001 - whatever happens, the parent must hear of it
        with contextlib.suppress(BaseException):
            channel.send({"error": traceback.format_exc()})
    finally:
        os._exit(code)


@pytest.fixture
def fork_child() -> Iterator[Callable[[Callable[[Channel], object]], Child]]:
    """Fork children running a function; any still running after the test is killed."""
    children: list[Child] = []

    def start(body: Callable[[Channel], object]) -> Child:
        child = Child(body)
        children.append(child)
        return child

    yield start
    for child in children:
        child.kill()


def run_python(
    *args: str, timeout: float = 30.0, **kwargs: Any
) -> subprocess.CompletedProcess[str]:
    """Run ``python *args`` in a fresh interpreter; fail the test if it overstays ``timeout``."""
    try:
        return subprocess.run(  # noqa: PLW1510 - callers check the status and print the output
            [sys.executable, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            **kwargs,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(
            f"python {' '.join(args)} did not finish in {timeout}s: {exc.stdout!r} {exc.stderr!r}"
        )


@pytest.fixture
def kit() -> types.SimpleNamespace:
    """The suite's helpers, for test modules that cannot import this one."""
    return types.SimpleNamespace(
        TIMEOUT=TIMEOUT,
        SCENARIOS=SCENARIOS,
        EXAMPLES=EXAMPLES,
        fork_warning_ignored=fork_warning_ignored,
        open_fds=open_fds,
        other_threads=other_threads,
        wait_until=wait_until,
        run_python=run_python,
    )


@pytest.fixture
def scenarios(monkeypatch: pytest.MonkeyPatch, transport: za.Transport) -> types.ModuleType:
    """``fork_scenarios``, importable by name (multiprocessing children import it too).

    Its ``TRANSPORT`` is this test's transport: what a forked child inherits.
    """
    monkeypatch.syspath_prepend(str(HERE))
    import fork_scenarios  # noqa: PLC0415 - importable only once its directory is on sys.path

    monkeypatch.setattr(fork_scenarios, "TRANSPORT", transport)
    return fork_scenarios


class Endpoint(Recorder):
    """What the suite's servers serve; thread-safe."""

    def __init__(self, name: str = "") -> None:
        super().__init__()
        self.name = name

    def pid(self) -> int:
        return os.getpid()

    def echo(self, value: object) -> object:
        return value

    def whoami(self) -> str:
        return self.name

    def sleep(self, seconds: float) -> float:
        time.sleep(seconds)
        return seconds


@pytest.fixture
def endpoint_class() -> type[Endpoint]:
    """The endpoint class of the suite's servers."""
    return Endpoint


@pytest.fixture
def serve(transport: za.Transport) -> Iterator[Callable[..., za.RPCServer]]:
    """Start in-process servers of `Endpoint` on ``transport``; stopped after the test."""
    servers: list[za.RPCServer] = []

    def start(
        topic: str, server: str, executor_size: int = 4, on: za.Transport | None = None
    ) -> za.RPCServer:
        rpc = za.RPCServer(
            on or transport,
            za.Target(topic, server=server),
            [Endpoint(server)],
            executor_size=executor_size,
        )
        rpc.start()
        servers.append(rpc)
        return rpc

    yield start
    for rpc in servers:
        if rpc.state == "running":
            rpc.stop()
            rpc.wait(timeout=TIMEOUT)
