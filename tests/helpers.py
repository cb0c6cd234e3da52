"""What the test packages share: polling with a deadline, free ports, foreign owners.

Imported as ``tests.helpers`` (``pythonpath = .`` in setup.cfg); kept free of
zmqactors imports so forked children and helper scripts can use it too.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import types
    from collections.abc import Callable

__all__ = ["EXAMPLES", "Recorder", "free_port", "give_away", "run_example", "wait_until"]

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def wait_until(
    predicate: Callable[[], object],
    what: str = "the condition",
    *,
    timeout: float = 10.0,
    interval: float = 0.01,
) -> float:
    """Poll ``predicate`` until it is true; return the seconds that took.

    Raises ``AssertionError`` naming ``what`` after ``timeout`` seconds. Never a
    bare sleep as synchronisation: every wait in the tests goes through here.
    """
    started = time.monotonic()
    deadline = started + timeout
    while not predicate():
        if time.monotonic() > deadline:
            msg = f"timed out after {timeout}s waiting for {what}"
            raise AssertionError(msg)
        time.sleep(interval)
    return time.monotonic() - started


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` (IPv4 or IPv6) that nothing listens on right now.

    For servers that cannot be told to pick their own (redis-server: ``--port
    0`` turns TCP off); the kernel picks one here, and the small race with
    other processes is accepted. zmqactors' own sockets bind port 0 instead.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def give_away(path: str | os.PathLike[str]) -> int | None:
    """Make ``path`` belong to another (unused) uid, as another user's file would.

    Returns that uid, or None when this process may not (only root can give
    a file away): the caller then skips its test.
    """
    other = os.geteuid() + 4242
    try:
        os.chown(path, other, -1)
    except PermissionError:
        return None
    return other


def run_example(
    name: str, runtime_dir: Path, *, timeout: float = 60.0
) -> subprocess.CompletedProcess[str]:
    """Run ``examples/NAME`` as a user would, with its default ``zmq://`` URL.

    ``runtime_dir`` becomes ``$XDG_RUNTIME_DIR``: zmq:// keeps its files there,
    so the example never touches the user's own. Output is captured as text.
    """
    return subprocess.run(
        [sys.executable, str(EXAMPLES / name)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={"PATH": "/usr/bin:/bin", "XDG_RUNTIME_DIR": str(runtime_dir)},
    )


class Recorder:
    """The ``record`` / ``recorded`` pair of the tests' endpoints; thread-safe.

    ``record`` is the cast the tests send, ``recorded`` a copy of what arrived.
    Endpoint classes inherit it (an RPC server exposes inherited methods) and
    call ``super().__init__()``.
    """

    def __init__(self) -> None:
        self._record_lock = threading.Lock()
        self._recorded: list[object] = []

    def record(self, value: object) -> None:
        with self._record_lock:
            self._recorded.append(value)

    def recorded(self) -> list[object]:
        with self._record_lock:
            return list(self._recorded)


def load_module(name: str, path: Path) -> types.ModuleType:
    """Import the file ``path`` as module ``name`` (test modules cannot import each other)."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # dataclasses look their module up in sys.modules while they are built.
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def kill_process(proc: subprocess.Popen[bytes] | None, timeout: float = 5.0) -> None:
    """SIGKILL ``proc`` (a crash: nothing saved or closed cleanly) if it runs, and reap it."""
    if proc is not None and proc.poll() is None:
        proc.kill()
        proc.wait(timeout=timeout)


def stop_process(proc: subprocess.Popen[bytes] | None, timeout: float = 5.0) -> None:
    """SIGTERM ``proc``, SIGKILL if it takes longer than ``timeout``; reap it."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_process(proc, timeout)
