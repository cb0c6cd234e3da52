"""Child processes: how a child reports to the orchestrator, how the orchestrator waits."""

from __future__ import annotations

import contextlib
import multiprocessing
import time
import traceback
from typing import TYPE_CHECKING, Any

from benchmarks.common import BenchError, configure_logging

if TYPE_CHECKING:
    from collections.abc import Callable
    from multiprocessing.connection import Connection
    from multiprocessing.context import SpawnProcess


def send_result(conn: Connection, kind: str, payload: object) -> None:
    """Send ``(kind, payload)`` to the orchestrator, ignoring a parent that went away."""
    with contextlib.suppress(OSError, EOFError):
        conn.send((kind, payload))


def run_child(conn: Connection, body: Callable[[], None]) -> None:
    """Run a child's ``body``; report an exception to the orchestrator as ``("error", text)``.

    The orchestrator prints the traceback, so the child only exits with status 1.
    """
    configure_logging()
    try:
        body()
    except Exception:  # noqa: BLE001 - any failure goes to the orchestrator, which reports it
        send_result(conn, "error", traceback.format_exc())
        raise SystemExit(1) from None
    finally:
        conn.close()


def wait_for_stop(conn: Connection, limit: float) -> None:
    """Block until the orchestrator says stop, closes the pipe, or ``limit`` seconds pass."""
    try:
        if conn.poll(limit):
            conn.recv()
    except (EOFError, OSError):
        pass


def expect(conn: Connection, process: SpawnProcess, kind: str, timeout: float) -> Any:
    """Wait up to ``timeout`` s for ``(kind, payload)`` from a child; return the payload.

    Raises `BenchError` if the child reports an error, exits or stays silent.
    """
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise BenchError(f"{process.name}: no {kind!r} within {timeout:.0f}s")
        try:
            ready = conn.poll(min(left, 0.5))
        except (EOFError, OSError):
            ready = True
        if ready:
            try:
                got, payload = conn.recv()
            except (EOFError, OSError):
                raise BenchError(
                    f"{process.name} exited (code {process.exitcode}) before sending {kind!r}"
                ) from None
            if got == "error":
                raise BenchError(f"{process.name} failed:\n{payload}")
            if got != kind:
                raise BenchError(f"{process.name}: expected {kind!r}, got {got!r}")
            return payload
        if not process.is_alive():
            raise BenchError(f"{process.name} exited (code {process.exitcode}) before {kind!r}")


class Children:
    """The child processes of one side of the benchmark; `close` always reaps them."""

    def __init__(self) -> None:
        self._context = multiprocessing.get_context("spawn")
        self._started: list[tuple[SpawnProcess, Connection]] = []

    def start(
        self, name: str, target: Callable[..., None], *args: object
    ) -> tuple[SpawnProcess, Connection]:
        """Start ``target(child_end, *args)`` in a spawned process; return it and our pipe end."""
        ours, theirs = self._context.Pipe()
        process = self._context.Process(target=target, args=(theirs, *args), name=name, daemon=True)
        process.start()
        theirs.close()
        self._started.append((process, ours))
        return process, ours

    @property
    def started(self) -> list[tuple[SpawnProcess, Connection]]:
        """The children started and not yet reaped, with our ends of their pipes."""
        return list(self._started)

    def close(self) -> None:
        """Terminate (then kill) every child still running and close the pipes."""
        for process, conn in self._started:
            process.join(timeout=1.0 if process.is_alive() else 0)
            if process.is_alive():
                process.terminate()
                process.join(timeout=5.0)
            if process.is_alive():
                process.kill()
                process.join(timeout=5.0)
            conn.close()
        self._started.clear()


def serve_rounds(conn: Connection, one_round: Callable[[], dict[str, Any]], limit: float) -> None:
    """A client's loop: answer each ``"round"`` with ``("round", one_round())``.

    Returns on ``"stop"``, a closed pipe, or when ``limit`` seconds have passed
    without the orchestrator's word (it gave up on this process).
    """
    deadline = time.monotonic() + limit
    while True:
        left = deadline - time.monotonic()
        try:
            if left <= 0 or not conn.poll(left):
                return
            command = conn.recv()
        except (EOFError, OSError):
            return
        if command != "round":
            return
        send_result(conn, "round", one_round())
