"""Fixtures shared by every test package."""

import selectors
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

SERVE = Path(__file__).parent / "integration" / "serve.py"


@pytest.fixture
def matchmaker_url(tmp_path: Path) -> str:
    """Return a file-matchmaker URL private to this test.

    Integration tests use it so they never share, or leave entries in, the
    user's default matchmaker directory.
    """
    return f"zmq+file://{tmp_path}/mm"


class ServerProcess:
    """An RPC server running in a child process (tests/integration/serve.py)."""

    def __init__(self, url: str, topic: str, server: str, *extra: str) -> None:
        self.server = server
        self.proc = subprocess.Popen(
            [
                sys.executable,
                str(SERVE),
                "--url",
                url,
                "--topic",
                topic,
                "--server",
                server,
                *extra,
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        self.address = ""

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Wait for the "ready" line, or fail the test."""
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as selector:
            selector.register(self.proc.stdout, selectors.EVENT_READ)
            while time.monotonic() < deadline:
                if not selector.select(timeout=max(0.0, deadline - time.monotonic())):
                    continue
                line = self.proc.stdout.readline()
                if not line:
                    pytest.fail(f"server {self.server} exited with {self.proc.wait(timeout=5)}")
                if line.startswith("ready "):
                    self.address = line.split()[1]
                    return
        pytest.fail(f"server {self.server} not ready within {timeout}s")

    def stop(self) -> int:
        """SIGTERM, then SIGKILL after 10 s; return the exit status."""
        try:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    return self.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
            return self.proc.wait(timeout=10)
        finally:
            if self.proc.stdout is not None:
                self.proc.stdout.close()


@pytest.fixture
def spawn_server(matchmaker_url: str) -> Iterator[Callable[..., ServerProcess]]:
    """Start RPC servers in child processes on this test's matchmaker; stop them after."""
    started: list[ServerProcess] = []

    def spawn(topic: str, server: str, *extra: str) -> ServerProcess:
        proc = ServerProcess(matchmaker_url, topic, server, *extra)
        started.append(proc)
        proc.wait_ready()
        return proc

    yield spawn
    for proc in started:
        proc.stop()
