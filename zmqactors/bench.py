"""Benchmark: zmqactors RPC against raw pyzmq, server and client in two processes.

Run ``python -m zmqactors.bench`` (``make bench``). On TCP loopback
(127.0.0.1, ephemeral ports) with ~100-byte arguments it first measures raw
pyzmq baselines, then zmqactors, and prints each zmqactors figure beside its
baseline with the ratio:

===============================  ==============================================
zmqactors                        raw pyzmq baseline
===============================  ==============================================
sync ``call``, 1 caller thread   DEALER->ROUTER echo, 1 outstanding
sync ``call``, 32 threads        DEALER->ROUTER echo, 100 outstanding
``call_async``, 100 outstanding  DEALER->ROUTER echo, 100 outstanding
``cast`` delivered/s             PUSH->PULL delivered/s
p50 / p99 of sync calls          p50 / p99 of the 1-outstanding echo
peak RSS of client and server    peak RSS of the raw client and server
===============================  ==============================================

Every side runs in fresh processes started with the ``spawn`` method: one
server process and one client process for raw pyzmq, then the same for
zmqactors. This process only orchestrates: it passes addresses and results over
`multiprocessing` pipes, waits for each with a timeout, and terminates its
children in ``finally``. zmqactors finds its server through a file matchmaker
in a fresh temporary directory.

Each figure is measured for ``--duration`` seconds after a ``--warmup``, and
the whole schedule is repeated ``--repeat`` times; the table shows medians
(these 2-CPU machines vary by +-15% from run to run).

Notes on fairness:

- Delivered rates (raw PUSH->PULL and ``cast``) are counted by the server
  between the first and the last message it received.
- zmqactors casts have no sender-side back-pressure (a full send queue drops a
  cast with a warning) while a raw PUSH blocks at its high-water mark, so the
  cast client paces itself: after every `_CAST_BATCH` casts it sends a
  ``call_async`` checkpoint and waits for the previous one, which keeps at
  most two batches in flight.
- The raw processes import this module, hence the zmqactors package, too, so
  the raw RSS is the floor of the same interpreter and imports; the difference
  is what zmqactors' actors, threads and buffers cost at run time.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import dataclasses
import json
import logging
import multiprocessing
import os
import platform
import random
import resource
import shutil
import string
import sys
import tempfile
import threading
import time
import traceback
from typing import TYPE_CHECKING, Any, Final, Literal

import structlog
import zmq

import zmqactors as za

if TYPE_CHECKING:
    import concurrent.futures
    from collections.abc import Callable, Sequence
    from multiprocessing.connection import Connection
    from multiprocessing.context import SpawnProcess

__all__ = ["BenchConfig", "main"]

PAYLOAD_SIZE: Final = 100
PIPELINE_DEPTH: Final = 100
CALLER_THREADS: Final = 32
_TOPIC: Final = "zmqactors-bench"
_SERVER: Final = "bench-server"
_LOOPBACK_ANY_PORT: Final = "tcp://127.0.0.1:*"
# Seconds: a call's deadline; how long any socket or future wait may block.
_CALL_TIMEOUT: Final = 10.0
# Seconds to wait for a child process to be ready or to report its last figures.
_START_TIMEOUT: Final = 60.0
_STOP_TIMEOUT: Final = 15.0
# Casts sent between two flow-control checkpoints (see the module docstring).
_CAST_BATCH: Final = 1000
# Control frames on the raw echo socket start with a NUL; echo payloads never do.
_CONTROL: Final = b"\x00"
_PUSH_END: Final = b"\x00end"
_NS: Final = 1e9


class BenchError(Exception):
    """A benchmark process failed, timed out or answered something unexpected."""


@dataclasses.dataclass(frozen=True)
class BenchConfig:
    """What a client process measures: durations in seconds, repeats, server addresses."""

    duration: float
    warmup: float
    repeat: int
    addresses: dict[str, str] = dataclasses.field(default_factory=dict)

    def budget(self, phases: int) -> float:
        """Seconds a client with ``phases`` figures per repeat may take before it is given up."""
        per_phase = self.duration + self.warmup + _CALL_TIMEOUT
        return _START_TIMEOUT + self.repeat * phases * per_phase


# -- helpers shared by every process -------------------------------------------------


def configure_logging() -> None:
    """Show only warnings and errors from structlog in this process.

    The library never configures logging; this program is an application and may.
    """
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))


def peak_rss_mib() -> float:
    """Return the peak resident set size of this process in MiB."""
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # ru_maxrss is in bytes on macOS, in KiB on Linux.
    return maxrss / (1024 * 1024) if sys.platform == "darwin" else maxrss / 1024


def make_payload(size: int = PAYLOAD_SIZE) -> str:
    """A random ASCII string of ``size`` characters (as many bytes encoded)."""
    return "".join(random.choices(string.ascii_letters + string.digits, k=size))


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile (``fraction`` in [0, 1]) of an ascending sequence."""
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(fraction * len(sorted_values)) - 1))
    return sorted_values[index]


def _latency_figures(latencies_ns: list[int]) -> tuple[float, float]:
    """p50 and p99 in microseconds of round-trip times in nanoseconds."""
    ordered = sorted(latencies_ns)
    return percentile(ordered, 0.50) / 1000, percentile(ordered, 0.99) / 1000


def _send_result(conn: Connection, kind: str, payload: object) -> None:
    """Send ``(kind, payload)`` to the orchestrator, ignoring a parent that went away."""
    with contextlib.suppress(OSError, EOFError):
        conn.send((kind, payload))


def _run_child(conn: Connection, body: Callable[[], None]) -> None:
    """Run a child's ``body``; report an exception to the orchestrator as ``("error", text)``.

    The orchestrator prints the traceback, so the child only exits with status 1.
    """
    configure_logging()
    try:
        body()
    except Exception:  # noqa: BLE001 - any failure goes to the orchestrator, which reports it
        _send_result(conn, "error", traceback.format_exc())
        raise SystemExit(1) from None
    finally:
        conn.close()


def _wait_for_stop(conn: Connection, limit: float) -> None:
    """Block until the orchestrator says stop, closes the pipe, or ``limit`` seconds pass."""
    try:
        if conn.poll(limit):
            conn.recv()
    except (EOFError, OSError):
        pass


# -- raw pyzmq: server process --------------------------------------------------------


class _RawSink:
    """What the raw PULL thread counts; read by the echo thread on a control request."""

    def __init__(self) -> None:
        self.count = 0
        self.first = 0.0
        self.last = 0.0
        self.ended = False

    def reset(self) -> None:
        """Forget the previous round (called while no PUSH round is running)."""
        self.count = 0
        self.first = self.last = 0.0
        self.ended = False

    def report(self) -> bytes:
        """The round's state as JSON: ended, messages counted, seconds first to last."""
        elapsed = self.last - self.first if self.ended else 0.0
        return json.dumps({"ended": self.ended, "count": self.count, "elapsed": elapsed}).encode()


def _raw_echo_loop(router: zmq.Socket[bytes], sink: _RawSink) -> None:
    """Echo every request on ``router``; answer control frames (its own thread).

    Returns when the context is terminated; closes the socket.
    """
    try:
        while True:
            frames = router.recv_multipart()
            if frames[-1][:1] == _CONTROL:
                if frames[-1] == b"\x00reset":
                    sink.reset()
                router.send_multipart([frames[0], sink.report()])
            else:
                router.send_multipart(frames)
    except zmq.ContextTerminated:
        pass
    finally:
        router.close(linger=0)


def _raw_pull_loop(pull: zmq.Socket[bytes], sink: _RawSink) -> None:
    """Count messages on ``pull`` until the end marker of each round (its own thread).

    Returns when the context is terminated; closes the socket.
    """
    clock = time.perf_counter
    try:
        while True:
            message = pull.recv()
            if message == _PUSH_END:
                sink.ended = True
                continue
            if not sink.count:
                sink.first = clock()
            sink.count += 1
            sink.last = clock()
    except zmq.ContextTerminated:
        pass
    finally:
        pull.close(linger=0)


def _raw_server_main(conn: Connection, limit: float) -> None:
    """Raw pyzmq server process: a ROUTER echo and a PULL counter, each on its own thread.

    Sends ``("ready", addresses)``, serves until told to stop (at most ``limit``
    seconds), then sends ``("result", {"rss_mib": ...})``.
    """

    def body() -> None:
        context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        router = context.socket(zmq.ROUTER)
        pull = context.socket(zmq.PULL)
        router.bind(_LOOPBACK_ANY_PORT)
        pull.bind(_LOOPBACK_ANY_PORT)
        addresses = {
            "echo": router.getsockopt_string(zmq.LAST_ENDPOINT),
            "push": pull.getsockopt_string(zmq.LAST_ENDPOINT),
        }
        sink = _RawSink()
        # Each socket moves to its thread once, before that thread's first use.
        threads = [
            threading.Thread(target=_raw_echo_loop, args=(router, sink), daemon=True),
            threading.Thread(target=_raw_pull_loop, args=(pull, sink), daemon=True),
        ]
        for thread in threads:
            thread.start()
        _send_result(conn, "ready", addresses)
        _wait_for_stop(conn, limit)
        context.term()  # the threads get ContextTerminated and close their sockets
        for thread in threads:
            thread.join(_STOP_TIMEOUT)
        _send_result(conn, "result", {"rss_mib": peak_rss_mib()})

    _run_child(conn, body)


# -- raw pyzmq: client process --------------------------------------------------------


def _raw_control(sock: zmq.Socket[bytes], command: bytes) -> dict[str, Any]:
    """Send a control frame on the echo DEALER and return the server's JSON answer."""
    sock.send(_CONTROL + command)
    answer: dict[str, Any] = json.loads(sock.recv())
    return answer


def raw_sync_echo(sock: zmq.Socket[bytes], payload: bytes, duration: float) -> dict[str, float]:
    """Echo round trips with one outstanding for ``duration`` s: rate/s, p50/p99 µs."""
    clock = time.perf_counter_ns
    latencies: list[int] = []
    record = latencies.append
    start = now = clock()
    end = start + int(duration * _NS)
    while now < end:
        sock.send(payload)
        sock.recv()
        done = clock()
        record(done - now)
        now = done
    p50, p99 = _latency_figures(latencies)
    return {"rate": len(latencies) * _NS / (now - start), "p50_us": p50, "p99_us": p99}


def raw_pipelined_echo(
    sock: zmq.Socket[bytes], payload: bytes, duration: float, depth: int = PIPELINE_DEPTH
) -> float:
    """Echo round trips with ``depth`` outstanding for ``duration`` s: replies/s."""
    clock = time.perf_counter
    for _ in range(depth):
        sock.send(payload)
    count = 0
    start = now = clock()
    end = start + duration
    while now < end:
        sock.recv()
        count += 1
        sock.send(payload)
        now = clock()
    for _ in range(depth):
        sock.recv()
    return count / (now - start)


def raw_push_pull(
    push: zmq.Socket[bytes], control: zmq.Socket[bytes], payload: bytes, duration: float
) -> float:
    """PUSH as fast as the high-water mark allows for ``duration`` s: delivered/s at the server."""
    _raw_control(control, b"reset")
    clock = time.perf_counter
    end = clock() + duration
    while clock() < end:
        for _ in range(64):
            push.send(payload)
    push.send(_PUSH_END)
    deadline = clock() + _CALL_TIMEOUT
    while True:
        report = _raw_control(control, b"stats")
        if report["ended"]:
            break
        if clock() > deadline:
            raise BenchError("the raw PULL server did not see the end of a round")
        time.sleep(0.001)
    return float(report["count"]) / max(float(report["elapsed"]), 1e-9)


def _raw_client_main(conn: Connection, config: BenchConfig) -> None:
    """Raw pyzmq client process: measures every raw figure ``config.repeat`` times.

    Sends ``("result", {"samples": {figure: [values]}, "rss_mib": ...})``.
    """

    def body() -> None:
        payload = make_payload().encode()
        timeout_ms = int(_CALL_TIMEOUT * 1000)
        context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        echo = context.socket(zmq.DEALER)
        push = context.socket(zmq.PUSH)
        for sock in (echo, push):
            sock.setsockopt(zmq.LINGER, 0)
            sock.setsockopt(zmq.RCVTIMEO, timeout_ms)
            sock.setsockopt(zmq.SNDTIMEO, timeout_ms)
        echo.connect(config.addresses["echo"])
        push.connect(config.addresses["push"])
        samples: dict[str, list[float]] = collections.defaultdict(list)
        try:
            for _ in range(config.repeat):
                raw_sync_echo(echo, payload, config.warmup)
                sync = raw_sync_echo(echo, payload, config.duration)
                samples["raw_sync_rate"].append(sync["rate"])
                samples["raw_p50_us"].append(sync["p50_us"])
                samples["raw_p99_us"].append(sync["p99_us"])
                raw_pipelined_echo(echo, payload, config.warmup)
                samples["raw_pipelined_rate"].append(
                    raw_pipelined_echo(echo, payload, config.duration)
                )
                raw_push_pull(push, echo, payload, config.warmup)
                samples["raw_push_rate"].append(raw_push_pull(push, echo, payload, config.duration))
        finally:
            context.destroy(linger=0)
        _send_result(conn, "result", {"samples": dict(samples), "rss_mib": peak_rss_mib()})

    _run_child(conn, body)


# -- zmqactors: server process --------------------------------------------------------


class BenchEndpoint:
    """The benchmark server's endpoint: an echo, and a counting sink for casts.

    Its methods run on the server's listener threads, so the sink is locked.
    """

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._count = 0
        self._first = 0.0
        self._last = 0.0

    def echo(self, data: str) -> str:
        """Return ``data``."""
        return data

    def sink(self, data: str) -> None:
        """Count one delivered cast and when it arrived."""
        del data
        now = time.perf_counter()
        with self._changed:
            if not self._count:
                self._first = now
            self._count += 1
            self._last = now
            self._changed.notify_all()

    def sink_reset(self) -> None:
        """Start a new round of counting casts."""
        with self._changed:
            self._count = 0
            self._first = self._last = 0.0

    def checkpoint(self) -> int:
        """The casts counted so far (the cast client's flow control)."""
        with self._changed:
            return self._count

    def sink_stats(self, expected: int, wait: float) -> dict[str, float]:
        """Wait up to ``wait`` s for ``expected`` casts; return their count and first-to-last s."""
        deadline = time.monotonic() + wait
        with self._changed:
            while self._count < expected:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._changed.wait(left)
            return {"count": float(self._count), "elapsed": self._last - self._first}

    def rss_mib(self) -> float:
        """The server process's peak RSS in MiB."""
        return peak_rss_mib()


def _za_server_main(conn: Connection, url: str, limit: float) -> None:
    """Server process for zmqactors: an `RPCServer` of `BenchEndpoint` on ``url``'s matchmaker.

    Sends ``("ready", {"address": ...})`` once the server is registered, serves
    until told to stop (at most ``limit`` seconds), then sends
    ``("result", {"rss_mib": ...})``.
    """

    def body() -> None:
        with za.Transport.from_url(url) as transport:
            server = za.RPCServer(
                transport, za.Target(topic=_TOPIC, server=_SERVER), [BenchEndpoint()]
            )
            server.start()
            _send_result(conn, "ready", {"address": server.address})
            _wait_for_stop(conn, limit)
            server.stop()
            server.wait(timeout=_STOP_TIMEOUT)
        _send_result(conn, "result", {"rss_mib": peak_rss_mib()})

    _run_child(conn, body)


# -- zmqactors: client process --------------------------------------------------------


def za_sync_calls(client: za.RPCClient, payload: str, duration: float) -> dict[str, float]:
    """Sync ``call`` from one thread for ``duration`` s: rate/s, p50/p99 µs."""
    clock = time.perf_counter_ns
    latencies: list[int] = []
    record = latencies.append
    call = client.call
    start = now = clock()
    end = start + int(duration * _NS)
    while now < end:
        call("echo", data=payload)
        done = clock()
        record(done - now)
        now = done
    p50, p99 = _latency_figures(latencies)
    return {"rate": len(latencies) * _NS / (now - start), "p50_us": p50, "p99_us": p99}


def za_threaded_calls(
    client: za.RPCClient, payload: str, duration: float, threads: int = CALLER_THREADS
) -> float:
    """Sync ``call`` from ``threads`` threads at once for ``duration`` s: calls/s in total."""
    clock = time.perf_counter
    counts = [0] * threads
    finished = [0.0] * threads
    errors: list[BaseException] = []
    window = {"start": 0.0, "end": 0.0}

    def open_window() -> None:
        window["start"] = clock()
        window["end"] = window["start"] + duration

    barrier = threading.Barrier(threads, action=open_window, timeout=_START_TIMEOUT)

    def worker(index: int) -> None:
        try:
            barrier.wait()
            end = window["end"]
            call = client.call
            count = 0
            now = clock()
            while now < end:
                call("echo", data=payload)
                count += 1
                now = clock()
            counts[index] = count
            finished[index] = now
        except BaseException as exc:  # noqa: BLE001 - re-raised by the measuring thread
            errors.append(exc)
            barrier.abort()

    workers = [
        threading.Thread(target=worker, args=(i,), name=f"bench-caller-{i}", daemon=True)
        for i in range(threads)
    ]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join(duration + _START_TIMEOUT)
    if errors:
        raise errors[0]
    if any(thread.is_alive() for thread in workers):
        raise BenchError("a caller thread did not finish in time")
    return sum(counts) / (max(finished) - window["start"])


def za_async_calls(
    client: za.RPCClient, payload: str, duration: float, depth: int = PIPELINE_DEPTH
) -> float:
    """``call_async`` with ``depth`` outstanding from one thread for ``duration`` s: calls/s.

    Waits for the oldest call and then sends one more, so between ``depth - k``
    and ``depth`` calls are outstanding when replies come out of order.
    """
    clock = time.perf_counter
    call_async = client.call_async
    pending: collections.deque[concurrent.futures.Future[Any]] = collections.deque(
        call_async("echo", data=payload) for _ in range(depth)
    )
    count = 0
    start = now = clock()
    end = start + duration
    while now < end:
        pending.popleft().result(timeout=_CALL_TIMEOUT)
        count += 1
        pending.append(call_async("echo", data=payload))
        now = clock()
    while pending:
        pending.popleft().result(timeout=_CALL_TIMEOUT)
    return count / (now - start)


def za_casts(client: za.RPCClient, payload: str, duration: float) -> dict[str, float]:
    """``cast`` for ``duration`` s with checkpoint flow control: delivered/s at the server.

    Returns ``rate`` (delivered/s, the server's first-to-last window), ``sent``
    and ``delivered``.
    """
    client.call("sink_reset")
    clock = time.perf_counter
    cast = client.cast
    sent = 0
    previous: concurrent.futures.Future[Any] | None = None
    end = clock() + duration
    while clock() < end:
        for _ in range(_CAST_BATCH):
            cast("sink", data=payload)
        sent += _CAST_BATCH
        checkpoint = client.call_async("checkpoint")
        if previous is not None:
            previous.result(timeout=_CALL_TIMEOUT)
        previous = checkpoint
    if previous is not None:
        previous.result(timeout=_CALL_TIMEOUT)
    stats = client.call("sink_stats", expected=sent, wait=_CALL_TIMEOUT / 2)
    delivered = float(stats["count"])
    return {
        "rate": delivered / max(float(stats["elapsed"]), 1e-9),
        "sent": float(sent),
        "delivered": delivered,
    }


def _za_client_main(conn: Connection, config: BenchConfig, url: str) -> None:
    """Client process for zmqactors: measures every zmqactors figure ``config.repeat`` times.

    Sends ``("result", {"samples": {figure: [values]}, "rss_mib": ...,
    "server_rss_mib": ...})``; the server's RSS is asked over RPC at the end.
    """

    def body() -> None:
        payload = make_payload()
        samples: dict[str, list[float]] = collections.defaultdict(list)
        with za.Transport.from_url(url) as transport:
            client = za.RPCClient(transport, za.Target(topic=_TOPIC), timeout=_CALL_TIMEOUT)
            for _ in range(config.repeat):
                za_sync_calls(client, payload, config.warmup)
                sync = za_sync_calls(client, payload, config.duration)
                samples["za_sync_rate"].append(sync["rate"])
                samples["za_p50_us"].append(sync["p50_us"])
                samples["za_p99_us"].append(sync["p99_us"])
                za_threaded_calls(client, payload, config.warmup)
                samples["za_threads_rate"].append(
                    za_threaded_calls(client, payload, config.duration)
                )
                za_async_calls(client, payload, config.warmup)
                samples["za_async_rate"].append(za_async_calls(client, payload, config.duration))
                za_casts(client, payload, config.warmup)
                casts = za_casts(client, payload, config.duration)
                samples["za_cast_rate"].append(casts["rate"])
                samples["za_cast_lost"].append(casts["sent"] - casts["delivered"])
            server_rss = float(client.call("rss_mib"))
        _send_result(
            conn,
            "result",
            {"samples": dict(samples), "rss_mib": peak_rss_mib(), "server_rss_mib": server_rss},
        )

    _run_child(conn, body)


# -- orchestration --------------------------------------------------------------------


def _expect(conn: Connection, process: SpawnProcess, kind: str, timeout: float) -> Any:
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


class _Children:
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


def _run_side(side: Literal["raw", "zmqactors"], config: BenchConfig, url: str) -> dict[str, Any]:
    """Start one side's server and client processes, run the client, stop the server.

    Returns the client's samples and both peak RSS figures. Raises `BenchError`.
    """
    phases = 3 if side == "raw" else 4
    limit = config.budget(phases) + _START_TIMEOUT
    children = _Children()
    try:
        if side == "raw":
            server, server_conn = children.start("raw-server", _raw_server_main, limit)
            addresses = _expect(server_conn, server, "ready", _START_TIMEOUT)
            client_config = dataclasses.replace(config, addresses=addresses)
            client, client_conn = children.start("raw-client", _raw_client_main, client_config)
        else:
            server, server_conn = children.start("zmqactors-server", _za_server_main, url, limit)
            _expect(server_conn, server, "ready", _START_TIMEOUT)
            client, client_conn = children.start("zmqactors-client", _za_client_main, config, url)
        result: dict[str, Any] = _expect(client_conn, client, "result", config.budget(phases))
        server_conn.send("stop")
        server_result = _expect(server_conn, server, "result", _STOP_TIMEOUT)
        result["server_rss_mib"] = max(
            float(server_result["rss_mib"]), float(result.get("server_rss_mib", 0.0))
        )
        return result
    finally:
        children.close()


@dataclasses.dataclass(frozen=True)
class Figure:
    """One row of the report: a zmqactors median beside its raw pyzmq baseline."""

    key: str
    label: str
    unit: str
    zmqactors: float
    raw: float
    baseline: str
    target: float | None = None

    @property
    def ratio(self) -> float:
        """The zmqactors figure divided by the raw one (NaN without a baseline)."""
        return self.zmqactors / self.raw if self.raw else float("nan")

    @property
    def met(self) -> bool | None:
        """Whether the ratio reaches the target (None when there is no target)."""
        return None if self.target is None else self.ratio >= self.target


def _median(samples: dict[str, list[float]], key: str) -> float:
    """The median of one figure's samples over the repeats."""
    values = sorted(samples[key])
    middle = len(values) // 2
    return values[middle] if len(values) % 2 else (values[middle - 1] + values[middle]) / 2


def build_figures(raw: dict[str, Any], zmq_side: dict[str, Any]) -> list[Figure]:
    """The report's rows from the two sides' results (medians over repeats)."""
    r: dict[str, list[float]] = raw["samples"]
    z: dict[str, list[float]] = zmq_side["samples"]
    echo1 = "echo, 1 outstanding"
    echo100 = f"echo, {PIPELINE_DEPTH} outstanding"
    return [
        Figure(
            "sync_calls_per_s",
            "sync calls/s (1 thread)",
            "1/s",
            _median(z, "za_sync_rate"),
            _median(r, "raw_sync_rate"),
            echo1,
            0.5,
        ),
        Figure(
            "threaded_calls_per_s",
            f"sync calls/s ({CALLER_THREADS} threads)",
            "1/s",
            _median(z, "za_threads_rate"),
            _median(r, "raw_pipelined_rate"),
            echo100,
            0.8,
        ),
        Figure(
            "async_calls_per_s",
            f"call_async/s ({PIPELINE_DEPTH} outstanding)",
            "1/s",
            _median(z, "za_async_rate"),
            _median(r, "raw_pipelined_rate"),
            echo100,
            0.8,
        ),
        Figure(
            "casts_per_s",
            "casts/s delivered",
            "1/s",
            _median(z, "za_cast_rate"),
            _median(r, "raw_push_rate"),
            "PUSH->PULL",
        ),
        Figure(
            "call_p50_us",
            "sync call latency p50 (us)",
            "us",
            _median(z, "za_p50_us"),
            _median(r, "raw_p50_us"),
            echo1,
        ),
        Figure(
            "call_p99_us",
            "sync call latency p99 (us)",
            "us",
            _median(z, "za_p99_us"),
            _median(r, "raw_p99_us"),
            echo1,
        ),
        Figure(
            "client_peak_rss_mib",
            "client peak RSS (MiB)",
            "MiB",
            float(zmq_side["rss_mib"]),
            float(raw["rss_mib"]),
            "raw client",
        ),
        Figure(
            "server_peak_rss_mib",
            "server peak RSS (MiB)",
            "MiB",
            float(zmq_side["server_rss_mib"]),
            float(raw["server_rss_mib"]),
            "raw server",
        ),
    ]


def _environment() -> dict[str, Any]:
    """Versions and machine facts printed with the figures."""
    return {
        "python": platform.python_version(),
        "pyzmq": zmq.__version__,
        "libzmq": zmq.zmq_version(),
        "zmqactors": za.__version__,
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
    }


def format_table(figures: Sequence[Figure]) -> str:
    """The figures as an aligned text table."""

    def number(value: float, unit: str) -> str:
        return f"{value:,.1f}" if unit == "MiB" else f"{value:,.0f}"

    header = (
        f"{'figure':<32}{'zmqactors':>12}{'raw pyzmq':>12}{'ratio':>9}"
        f"{'target':>10}{'met':>5}  baseline"
    )
    lines = [header, "-" * len(header)]
    for fig in figures:
        target = "-" if fig.target is None else f">= {fig.target:.1f}x"
        met = "" if fig.met is None else ("yes" if fig.met else "NO")
        lines.append(
            f"{fig.label:<32}{number(fig.zmqactors, fig.unit):>12}{number(fig.raw, fig.unit):>12}"
            f"{fig.ratio:>8.2f}x{target:>10}{met:>5}  {fig.baseline}"
        )
    return "\n".join(lines)


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line: durations, repeats, output format."""
    parser = argparse.ArgumentParser(
        prog="python -m zmqactors.bench",
        description="Measure zmqactors RPC against raw pyzmq on TCP loopback, "
        "server and client in separate processes.",
    )
    parser.add_argument(
        "--duration", type=float, default=3.0, help="seconds per measurement (default 3)"
    )
    parser.add_argument(
        "--warmup", type=float, default=None, help="seconds of warm-up before each (default 0.5)"
    )
    parser.add_argument(
        "--repeat", type=int, default=3, help="repeats; the median is reported (default 3)"
    )
    parser.add_argument(
        "--quick", action="store_true", help="0.5 s per measurement, 0.1 s warm-up (smoke test)"
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    if args.quick:
        args.duration = 0.5
        args.warmup = 0.1 if args.warmup is None else args.warmup
    if args.warmup is None:
        args.warmup = 0.5
    if not 0 < args.duration <= 600 or not 0 <= args.warmup <= 60:
        parser.error("--duration must be in (0, 600] and --warmup in [0, 60] seconds")
    if not 1 <= args.repeat <= 100:
        parser.error("--repeat must be from 1 to 100")
    return args


def _report_json(
    figures: Sequence[Figure], raw: dict[str, Any], zmq_side: dict[str, Any], config: BenchConfig
) -> str:
    """The figures, every sample and the settings as a JSON document."""
    document = {
        "figures": {
            fig.key: {
                "label": fig.label,
                "unit": fig.unit,
                "zmqactors": fig.zmqactors,
                "raw": fig.raw,
                "ratio": fig.ratio,
                "baseline": fig.baseline,
                "target": fig.target,
                "met": fig.met,
            }
            for fig in figures
        },
        "samples": {**raw["samples"], **zmq_side["samples"]},
        "config": {
            "duration": config.duration,
            "warmup": config.warmup,
            "repeat": config.repeat,
            "payload_bytes": PAYLOAD_SIZE,
            "pipeline_depth": PIPELINE_DEPTH,
            "caller_threads": CALLER_THREADS,
            "cast_batch": _CAST_BATCH,
        },
        "environment": _environment(),
    }
    return json.dumps(document, indent=2)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print its report; 0 on success, 1 if a process failed."""
    args = _parse_args(argv)
    configure_logging()
    config = BenchConfig(duration=args.duration, warmup=args.warmup, repeat=args.repeat)
    directory = tempfile.mkdtemp(prefix="zmqactors-bench-")
    url = f"zmq+file://{directory}"
    try:
        print("measuring raw pyzmq ...", file=sys.stderr, flush=True)
        raw = _run_side("raw", config, url)
        print("measuring zmqactors ...", file=sys.stderr, flush=True)
        zmq_side = _run_side("zmqactors", config, url)
    except BenchError as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    figures = build_figures(raw, zmq_side)
    if args.json:
        print(_report_json(figures, raw, zmq_side, config))
        return 0
    env = _environment()
    print(
        f"zmqactors {env['zmqactors']} / Python {env['python']} / pyzmq {env['pyzmq']} "
        f"(libzmq {env['libzmq']}) / {env['cpus']} CPUs; {PAYLOAD_SIZE} B arguments, "
        f"TCP loopback; median of {config.repeat} x {config.duration:g} s"
    )
    print()
    print(format_table(figures))
    lost = sum(zmq_side["samples"].get("za_cast_lost", []))
    if lost:
        print(f"\nwarning: {lost:,.0f} casts sent were not delivered", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
