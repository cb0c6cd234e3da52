"""Fixtures shared by every test package."""

import os
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog

import zmqactors as za

SERVE = Path(__file__).parent / "integration" / "serve.py"
LISTEN = Path(__file__).parent / "integration" / "listen.py"


@pytest.fixture(autouse=True)
def _structlog_restored() -> Iterator[None]:
    """Undo any structlog configuration a test makes (the CLI configures it, as an
    application does): a later test's loggers would otherwise write to the
    first test's captured, by then closed, stderr."""
    configured, saved = structlog.is_configured(), structlog.get_config()
    yield
    if configured:
        structlog.configure(**saved)
    else:
        structlog.reset_defaults()


# The loopback addresses of the two IP families, by test id.
LOOPBACKS = {"ipv4": "127.0.0.1", "ipv6": "::1"}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run each test marked ``both_families`` that uses `loopback` once per IP family."""
    if "loopback" in metafunc.fixturenames and metafunc.definition.get_closest_marker(
        "both_families"
    ):
        metafunc.parametrize(
            "loopback", list(LOOPBACKS.values()), ids=list(LOOPBACKS), indirect=True
        )


@pytest.fixture
def loopback(request: pytest.FixtureRequest) -> str:
    """Where servers bind: 127.0.0.1, and ::1 too in tests marked ``both_families``."""
    return str(getattr(request, "param", LOOPBACKS["ipv4"]))


@pytest.fixture
def matchmaker_url(tmp_path: Path, loopback: str) -> str:
    """Return a file-matchmaker URL private to this test, its servers bound on `loopback`.

    Integration tests use it so they never share, or leave entries in, the
    user's default matchmaker directory. On 127.0.0.1 (the default
    bind_address) it has no query; add parameters with `with_query`.
    """
    return bound_on(f"zmq+file://{tmp_path}/mm", loopback)


@pytest.fixture
def transport(matchmaker_url: str) -> Iterator[za.Transport]:
    """A transport on this test's private matchmaker, closed after the test."""
    with za.Transport.from_url(matchmaker_url) as transport:
        yield transport


def bound_on(url: str, loopback: str) -> str:
    """``url`` with ``bind_address=loopback`` unless that is the default, 127.0.0.1."""
    return url if loopback == LOOPBACKS["ipv4"] else with_query(url, f"bind_address={loopback}")


@pytest.fixture
def on_loopback(loopback: str) -> Callable[[str], str]:
    """`bound_on` for this test's `loopback`: servers of the URL it gives bind there."""
    return lambda url: bound_on(url, loopback)


class ServerProcess:
    """An RPC server (tests/integration/serve.py) or listener (listen.py) in a child process."""

    def __init__(
        self,
        url: str,
        topic: str,
        server: str,
        *extra: str,
        script: Path = SERVE,
        prefix: tuple[str, ...] = (),
    ) -> None:
        self.server = server
        args = [] if script == LISTEN else ["--server", server]
        self.proc = subprocess.Popen(
            [*prefix, sys.executable, str(script), "--url", url, "--topic", topic, *args, *extra],
            stdout=subprocess.PIPE,
            text=True,
        )
        self.address = ""
        self.lines: list[str] = []
        self._partial = b""

    def drain(self, timeout: float = 0.05) -> list[str]:
        """Collect the lines that arrive within ``timeout`` seconds (maybe none).

        Reads the pipe's descriptor directly: a buffered ``readline()`` would
        hide lines in its buffer from ``select()``.
        """
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        with selectors.DefaultSelector() as selector:
            selector.register(fd, selectors.EVENT_READ)
            while selector.select(timeout=timeout):
                chunk = os.read(fd, 65536)
                if not chunk:
                    break
                self._partial += chunk
                *complete, self._partial = self._partial.split(b"\n")
                self.lines.extend(line.decode() for line in complete)
        return self.lines

    def read_lines(self, until: Callable[[list[str]], bool], timeout: float = 30.0) -> list[str]:
        """Collect output lines until ``until(lines)`` holds; fail after ``timeout``."""
        deadline = time.monotonic() + timeout
        while not until(self.drain()):
            if time.monotonic() > deadline:
                pytest.fail(f"{self.server}: condition not met in {timeout}s: {self.lines[-5:]}")
            if self.proc.poll() is not None:
                pytest.fail(f"{self.server} exited early: {self.lines[-5:]}")
        return self.lines

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Wait for the "ready ADDRESS" line, or fail the test."""
        lines = self.read_lines(lambda lines: any(x.startswith("ready ") for x in lines), timeout)
        self.address = next(x for x in lines if x.startswith("ready ")).split()[1]

    def signal(self, signum: int) -> None:
        """Send ``signum`` to the process (SIGSTOP, SIGKILL: the fault tests)."""
        self.proc.send_signal(signum)

    def stop(self) -> int:
        """SIGTERM (after SIGCONT, should it be stopped), then SIGKILL after 10 s; the status."""
        try:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGCONT)
                self.proc.terminate()
                try:
                    return self.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
            return self.proc.wait(timeout=10)
        finally:
            if self.proc.stdout is not None:
                self.proc.stdout.close()


def _spawner(matchmaker_url: str, default_script: Path) -> Iterator[Callable[..., ServerProcess]]:
    """Yield a function starting `ServerProcess` es of ``default_script``; stop them after."""
    started: list[ServerProcess] = []

    def spawn(
        topic: str,
        server: str,
        *extra: str,
        script: Path = default_script,
        url: str | None = None,
        prefix: tuple[str, ...] = (),
        ready_timeout: float = 30.0,
    ) -> ServerProcess:
        proc = ServerProcess(
            url or matchmaker_url, topic, server, *extra, script=script, prefix=prefix
        )
        started.append(proc)
        proc.wait_ready(ready_timeout)
        return proc

    yield spawn
    for proc in started:
        proc.stop()


@pytest.fixture
def spawn_server(matchmaker_url: str) -> Iterator[Callable[..., ServerProcess]]:
    """Start RPC servers in child processes on this test's matchmaker; stop them after.

    ``script`` is another server script taking the same arguments (e.g. the
    reliability tests'); ``url`` another matchmaker URL (with options);
    ``prefix`` runs it elsewhere (``ip netns exec NS``); ``ready_timeout``:
    how long it may take to say it is ready (30 s).
    """
    yield from _spawner(matchmaker_url, SERVE)


@pytest.fixture
def spawn_listener(matchmaker_url: str) -> Iterator[Callable[..., ServerProcess]]:
    """Start notification listeners in child processes on this test's matchmaker.

    ``url`` and ``prefix`` as for `spawn_server`.
    """
    yield from _spawner(matchmaker_url, LISTEN)


class CurveKeys:
    """CURVE key pairs for the tests: a server, a client, an intruder; an allow-list of two.

    ``allowed`` holds the public keys of ``server`` and ``client`` (what a
    server of these tests lets in); ``intruder`` has a sound key pair that is
    on no allow-list.
    """

    def __init__(self, directory: Path) -> None:
        import zmq.auth  # noqa: PLC0415 - only the CURVE tests need it

        self.directory = directory
        self.allowed = directory / "allowed"
        self.allowed.mkdir(parents=True)
        self.public: dict[str, str] = {}
        for name in ("server", "client", "intruder"):
            public_file, secret_file = map(Path, zmq.auth.create_certificates(directory, name))
            secret_file.chmod(0o600)
            self.public[name] = zmq.auth.load_certificate(public_file)[0].decode()
            if name != "intruder":
                public_file.replace(self.allowed / f"{name}.key")

    def secret(self, name: str) -> str:
        """The secret key file of ``name``."""
        return str(self.directory / f"{name}.key_secret")

    def server_url(self, url: str, name: str = "server") -> str:
        """``url`` with ``name``'s key pair and the allow-list as query parameters."""
        return with_query(
            url, f"curve_secret_key_file={self.secret(name)}&curve_public_keys_dir={self.allowed}"
        )

    def client_url(self, url: str, name: str = "client") -> str:
        """``url`` with ``name``'s key pair (a client needs no allow-list)."""
        return with_query(url, f"curve_secret_key_file={self.secret(name)}")


def with_query(url: str, query: str) -> str:
    """``url`` with the parameters ``query`` (``NAME=VALUE&...``) added."""
    return f"{url}{'&' if '?' in url else '?'}{query}"


@pytest.fixture
def transports() -> Iterator[Callable[[str], Any]]:
    """Open transports from URLs for this test: ``transports(url)``; all closed at its end."""
    import zmqactors as za  # noqa: PLC0415 - only the tests that use transports need it

    made: list[za.Transport] = []

    def make(url: str) -> za.Transport:
        transport = za.Transport.from_url(url)
        made.append(transport)
        return transport

    yield make
    for transport in made:
        transport.close()


@pytest.fixture(name="with_query")
def with_query_fixture() -> Callable[[str, str], str]:
    """`with_query`, for test modules (which cannot import this one)."""
    return with_query


@pytest.fixture
def curve_keys(tmp_path: Path) -> CurveKeys:
    """Fresh CURVE key pairs for this test (see `CurveKeys`)."""
    return CurveKeys(tmp_path / "curve")
