"""Harness for oslo.messaging's own functional tests (and the driver's) on zmqactors.

oslo's test package calls ``eventlet.monkey_patch()`` when imported, and its
fixtures ask for the eventlet executor. Neither may happen here: zmqactors
runs on plain threads, and monkey patching would change the standard library
under every other test. So, before anything imports oslo.messaging:

- ``sys.modules["eventlet"]`` is None, so every library that looks for
  eventlet (``oslo_utils.eventletutils``, futurist, oslo.service) finds it
  absent and uses threads; oslo.service is told to load its threading
  backend. The real eventlet (installed as a dependency of oslo.service) is
  never imported; `test_harness.py` checks that;
- while oslo's test package is imported, a stand-in module whose
  ``monkey_patch`` only counts its calls takes eventlet's place;
- oslo's servers asked for the ``eventlet`` executor get ``threading``.

Transport URLs: ``zmq://`` with ``XDG_RUNTIME_DIR`` pointed at a temporary
directory (so the file matchmaker stays out of the user's), and
``zmq+redis://`` on a redis-server started for the session, when the Redis
matchmaker and a redis-server binary are there (else those cases skip,
saying why).
"""

from __future__ import annotations

import importlib.machinery
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import types
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests import etcd_process
from tests.helpers import free_port

if TYPE_CHECKING:
    from collections.abc import Iterator


# -- eventlet: absent, but for one harmless call (before oslo.messaging is imported) --


class _MonkeyPatchCalls:
    count = 0


def _no_monkey_patch(*_args: Any, **_kwargs: Any) -> None:
    """What oslo's test package calls: patch nothing."""
    _MonkeyPatchCalls.count += 1


def _stand_in() -> types.ModuleType:
    module = types.ModuleType("eventlet", "zmqactors test stand-in: monkey_patch() does nothing")
    module.__path__ = []  # a package without submodules: `import eventlet.x` fails
    module.__spec__ = importlib.machinery.ModuleSpec("eventlet", None, is_package=True)
    module.monkey_patch = _no_monkey_patch  # type: ignore[attr-defined]
    return module


if sys.modules.get("eventlet", None) is not None:
    msg = "eventlet was imported before the oslo harness could keep it out"
    raise RuntimeError(msg)
# None in sys.modules: `import eventlet` raises ImportError, so oslo.utils,
# oslo.service and futurist all find it absent and use threads.
sys.modules["eventlet"] = None  # type: ignore[assignment]

try:
    with warnings.catch_warnings():
        # oslo_utils.eventletutils and friends warn about their own deprecations
        # at import time; pytest turns warnings into errors.
        warnings.simplefilter("ignore")
        # oslo.service (imported by oslo.messaging) loads its eventlet backend
        # unless told otherwise.
        from oslo_service import backend as oslo_service_backend

        oslo_service_backend.init_backend(oslo_service_backend.BackendType.THREADING)
        import oslo_messaging
        from oslo_messaging import server as oslo_server

        # oslo's test package runs `import eventlet; eventlet.monkey_patch()`.
        sys.modules["eventlet"] = _stand_in()
        try:
            import oslo_messaging.tests  # noqa: F401
            from oslo_messaging.tests.functional import test_functional  # noqa: F401
            from oslo_messaging.tests.functional.notify import test_logger  # noqa: F401
        finally:
            sys.modules["eventlet"] = None  # type: ignore[assignment]
except ImportError as exc:  # oslo.messaging or its test dependencies are missing
    collect_ignore_glob = ["test_*.py"]
    _MISSING = str(exc)
else:
    _MISSING = ""

    _original_init = oslo_server.MessageHandlingServer.__init__

    def _threading_executor(
        self: Any, transport: Any, dispatcher: Any, executor: str | None = None
    ) -> None:
        if executor == "eventlet":
            executor = "threading"
        _original_init(self, transport, dispatcher, executor)

    oslo_server.MessageHandlingServer.__init__ = _threading_executor

    if os.environ.get("ZMQACTORS_OSLO_UPSTREAM_TIMING", "") not in {"1", "true", "yes"}:
        # Two waits of oslo's fixtures sized for brokers, shortened so the
        # suite fits `make test` (ZMQACTORS_OSLO_UPSTREAM_TIMING=1 keeps them):
        # - TransportFixture.wait() sleeps 0.5 s "to allow time for the server
        #   to connect to the broker"; there is no broker, and a zmqactors
        #   listener's start() returns once it is registered;
        # - NotificationFixture.get_events(timeout=15) (the logging-handler
        #   cases, sized for Kafka) returns after 15 s without events; 1 s of
        #   silence is still ages for a duplicate to show up over ZeroMQ.
        #   Waits under 10 s (batch cases: 3 s for a 2 s batch_timeout) are kept.
        from oslo_messaging.tests.functional import utils as oslo_functional_utils

        _original_get_events = oslo_functional_utils.NotificationFixture.get_events

        def _get_events(self: Any, timeout: float = 0.5) -> Any:
            return _original_get_events(self, QUIET_PERIOD if timeout >= KAFKA_SIZED else timeout)

        oslo_functional_utils.TransportFixture.wait = lambda _self: None
        oslo_functional_utils.NotificationFixture.get_events = _get_events

MONKEY_PATCH_CALLS = _MonkeyPatchCalls
QUIET_PERIOD = 1.0
KAFKA_SIZED = 10.0


# -- transport URLs ------------------------------------------------------------------


def _redis_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _redis_matchmaker_missing() -> str:
    """Why ``zmq+redis://`` cannot be tested here, or "" if it can."""
    try:
        from zmqactors.errors import ConfigurationError  # noqa: PLC0415
        from zmqactors.matchmaker import create_matchmaker  # noqa: PLC0415

        create_matchmaker("redis", "127.0.0.1:6379/0").close()
    except (ImportError, ConfigurationError) as exc:
        return f"the Redis matchmaker is not available: {exc}"
    if shutil.which("redis-server") is None:
        return "redis-server is not on PATH (apt-get install redis-server)"
    return ""


class Backends:
    """The transport URL of each backend the oslo cases run against, started on demand."""

    def __init__(self, tmp: str) -> None:
        self._tmp = tmp
        self._redis: subprocess.Popen[bytes] | None = None
        self._redis_url = ""
        self._redis_missing: str | None = None
        self._etcd: etcd_process.EtcdProcess | None = None

    def url(self, backend: str) -> str:
        """``zmq://``, a ``zmq+redis://`` or ``zmq+etcd://`` URL; skips without its store."""
        if backend == "zmq":
            return "zmq://"
        if backend == "redis":
            return self._redis_url or self._start_redis()
        if backend == "etcd":
            return self._start_etcd().url
        msg = f"unknown backend {backend!r}"
        raise ValueError(msg)

    def _start_etcd(self) -> etcd_process.EtcdProcess:
        if self._etcd is None:
            try:
                self._etcd = etcd_process.start_member(Path(self._tmp) / "etcd")
            except etcd_process.EtcdMissing as exc:
                if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
                    pytest.fail(str(exc))
                pytest.skip(str(exc))
        return self._etcd

    def _start_redis(self) -> str:
        if self._redis_missing is None:
            self._redis_missing = _redis_matchmaker_missing()
        if self._redis_missing:
            pytest.skip(self._redis_missing)
        port = free_port()
        directory = os.path.join(self._tmp, "redis")  # noqa: PTH118
        os.makedirs(directory, exist_ok=True)  # noqa: PTH103
        self._redis = subprocess.Popen(
            [
                shutil.which("redis-server") or "redis-server",
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                directory,
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not _redis_ping(port):
            if time.monotonic() > deadline or self._redis.poll() is not None:
                self._redis_missing = "redis-server did not start"
                pytest.fail(self._redis_missing)
            time.sleep(0.05)
        self._redis_url = f"zmq+redis://127.0.0.1:{port}/0"
        return self._redis_url

    def close(self) -> None:
        """Stop the redis-server and etcd, if they were started."""
        if self._etcd is not None:
            self._etcd.stop()
        if self._redis is not None:
            self._redis.terminate()
            try:
                self._redis.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._redis.kill()
                self._redis.wait(timeout=5)


@pytest.fixture
def eventlet_monkey_patch_calls() -> int:
    """How many times oslo's test package called ``eventlet.monkey_patch()`` (the stand-in's)."""
    return MONKEY_PATCH_CALLS.count


@pytest.fixture(scope="session")
def oslo_backends() -> Iterator[Backends]:
    """The backends; ``XDG_RUNTIME_DIR`` (``zmq://``'s directory) in a temporary directory."""
    if _MISSING:
        pytest.skip(f"oslo.messaging's functional tests cannot be imported: {_MISSING}")
    with (
        tempfile.TemporaryDirectory(prefix="zmqactors-oslo-") as tmp,
        pytest.MonkeyPatch.context() as mp,
    ):
        runtime = os.path.join(tmp, "run")  # noqa: PTH118
        os.mkdir(runtime, 0o700)  # noqa: PTH102
        mp.setenv("XDG_RUNTIME_DIR", runtime)
        backends = Backends(tmp)
        try:
            yield backends
        finally:
            backends.close()


@pytest.fixture(autouse=True)
def _oslo_transport_urls(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, oslo_backends: Backends
) -> None:
    """Point oslo's functional cases (classes with a ``zmq_backend``) at their backend."""
    backend = getattr(request.cls, "zmq_backend", None) if request.cls is not None else None
    if backend is None:
        return
    url = oslo_backends.url(backend)
    monkeypatch.setenv("RPC_TRANSPORT_URL", url)
    monkeypatch.setenv("NOTIFY_TRANSPORT_URL", url)
