"""Benchmark: zmqactors against raw pyzmq, every side in its own processes.

Run ``python -m zmqactors.bench`` (``make bench``). On TCP loopback
(127.0.0.1, or ::1 with ``--host ::1``; ephemeral ports) with ~100-byte
arguments it first measures raw pyzmq baselines, then zmqactors, and prints
each zmqactors figure beside its baseline with the ratio:

===================================  ==========================================
zmqactors                            raw pyzmq baseline
===================================  ==========================================
sync ``call``, 1 caller thread       DEALER->ROUTER echo, 1 outstanding
sync ``call``, 32 threads            DEALER->ROUTER echo, 100 outstanding
``call_async``, 100 outstanding      DEALER->ROUTER echo, 100 outstanding
``cast`` delivered/s                 PUSH->PULL delivered/s
fanout ``cast`` to 3 servers         3 PUSH->PULL, one per server, each message
                                     sent on all three
notifications/s to 1 listener        PUSH->PULL delivered/s (the row above)
notifications/s to a pool of 2       one PUSH->2 PULL (round-robin)
p50 / p99 of sync calls              p50 / p99 of the 1-outstanding echo
sync ``call`` with CURVE             CURVE DEALER->ROUTER echo, 1 outstanding
``call_async`` with CURVE, 100 out   CURVE DEALER->ROUTER echo, 100 outstanding
peak RSS of client, server, sinks    peak RSS of the raw client, server, sinks
===================================  ==========================================

CURVE on/off: the server process also serves the same endpoint on a second
transport with CurveZMQ (key pairs written by `zmqactors.net.security`
in the run's temporary directory, an allow-list, the ZAP authenticator), the
raw server a second ROUTER with CURVE and a ``zmq.auth`` ZAP handler, and
each client measures both sockets in the same run. The report adds the cost
of CURVE for each side, ``1 - rate with CURVE / rate without`` (target for
zmqactors: under 25% of call throughput).

Every side runs in fresh processes started with the ``spawn`` method: one
server process, three *sink* processes and one client process for raw pyzmq,
then the same for zmqactors. This process only orchestrates: it passes
addresses and results over `multiprocessing` pipes, waits for each with a
timeout, and terminates its children in ``finally``. zmqactors finds its
servers and listeners through a file matchmaker in a fresh temporary directory.

The sinks receive fanouts and notifications; each is a separate process
(closer to a deployment than three servers in one process, and the raw side
gets the same three processes). A zmqactors sink hosts an `RPCServer` named
``bench-sink-<i>`` on one fanout topic, which also answers the client's
control calls (reset, counts), and the notification listeners: sink 0 listens
on the "one listener" topic and on the "pool" topic, sink 1 on the "pool"
topic, both in one pool; sink 2 only takes fanouts. A raw sink is the raw
server again: a PULL counter and a ROUTER for control.

Each figure is measured for ``--duration`` seconds (default 3) after a
``--warmup`` (0.5), and the whole schedule is repeated ``--repeat`` times (3);
the table shows medians (these 2-CPU machines vary by +-15% from run to run).
With the defaults the whole run takes about two minutes; ``--quick`` (0.5 s,
0.1 s, one repeat) about 15 seconds.

Notes on fairness:

- Delivered rates (raw PUSH->PULL, ``cast``, fanout, notifications) are
  counted by the receivers between the first and the last message received;
  with several receivers, from the first received by any to the last received
  by any (`time.monotonic`, one clock for every process on the machine).
- A fanout counts as delivered when all 3 servers got it: fanouts/s is the
  smallest of the three counts over that window, which is also the messages/s
  each server received; the total is the sum of the three counts over it.
- The fanout baseline is one PUSH per server with each message sent on all
  three, not PUB->3 SUB: zmqactors sends a fanout as one message per server
  over one socket per server, which is that shape, and PUSH blocks at its
  high-water mark so the baseline loses nothing, whereas PUB drops silently
  for a slow subscriber and fans out inside libzmq's I/O thread (work no
  Python sender does).
- The notifications-to-one-listener baseline is the ``cast`` baseline (one
  PUSH->PULL), measured once. For the pool of two, one PUSH connected to two
  PULL sinks spreads messages round-robin, as the notifier takes the pool's
  listeners in turn.
- zmqactors casts and notifications have no sender-side back-pressure (a full
  send queue drops one with a warning and counts ``send_failures``) while a
  raw PUSH blocks at its high-water mark, so the zmqactors clients pace
  themselves, keeping at most two batches in flight (`_CAST_BATCH` casts or
  notifications, `_FANOUT_BATCH` fanouts). Casts and fanouts: after every
  batch a ``call_async`` checkpoint to each server (it travels behind the
  batch on the same socket), then wait for the previous batch's checkpoints.
  Notifications reach the listener's own socket, not the server's, so a
  checkpoint would not follow them: after every batch the client asks the
  sinks' RPC servers for their counts until all but the last batch are
  delivered (sleeping in between for about the time the rest should take).
- Nothing may be lost: the client sends exactly as many messages as it counts,
  the receivers count what arrives, and the report prints the difference
  (sent - delivered) and the transports' drop counters.
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
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

import structlog
import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator

import zmqactors as za
from zmqactors._addresses import check_host, tcp_endpoint
from zmqactors.net import security

if TYPE_CHECKING:
    import concurrent.futures
    from collections.abc import Callable, Mapping, Sequence
    from multiprocessing.connection import Connection
    from multiprocessing.context import SpawnProcess

__all__ = ["BenchConfig", "main"]

PAYLOAD_SIZE: Final = 100
PIPELINE_DEPTH: Final = 100
CALLER_THREADS: Final = 32
_TOPIC: Final = "zmqactors-bench"
_CURVE_TOPIC: Final = "zmqactors-bench-curve"
# CURVE may cost zmqactors at most this share of its call throughput.
CURVE_COST_TARGET: Final = 0.25
_SERVER: Final = "bench-server"
_DEFAULT_HOST: Final = "127.0.0.1"
# Seconds: a call's deadline; how long any socket or future wait may block.
_CALL_TIMEOUT: Final = 10.0
# Seconds to wait for a child process to be ready or to report its last figures.
_START_TIMEOUT: Final = 60.0
_STOP_TIMEOUT: Final = 15.0
# Casts (and notifications) sent between two flow-control checkpoints (see the
# module docstring); fanouts are slower and send a message per server, so fewer.
_CAST_BATCH: Final = 1000
_FANOUT_BATCH: Final = 250
# Control frames on the raw echo socket start with a NUL; echo payloads never do.
_CONTROL: Final = b"\x00"
_NS: Final = 1e9
# Fanouts go to this many sink processes; notifications to one of them, then a pool of two.
FANOUT_SERVERS: Final = 3
POOL_LISTENERS: Final = 2
_SINK_TOPIC: Final = "zmqactors-bench-fanout"
_NOTIFY_ONE_TOPIC: Final = "zmqactors-bench-notify-one"
_NOTIFY_POOL_TOPIC: Final = "zmqactors-bench-notify-pool"
_POOL: Final = "bench-pool"
_PUBLISHER: Final = "bench-publisher"
_EVENT_TYPE: Final = "bench.event"
# A clock shared by every process on the machine, so that receivers in several
# processes can be put on one time line (CLOCK_MONOTONIC on Linux).
_clock: Final = time.monotonic


def sink_name(index: int) -> str:
    """The server name of sink ``index``'s `RPCServer`."""
    return f"bench-sink-{index}"


def sink_notify_topics(index: int) -> tuple[str, ...]:
    """The notification topics sink ``index`` listens on (as a member of `_POOL`)."""
    if index == 0:
        return (_NOTIFY_ONE_TOPIC, _NOTIFY_POOL_TOPIC)
    if index < POOL_LISTENERS:
        return (_NOTIFY_POOL_TOPIC,)
    return ()


class BenchError(Exception):
    """A benchmark process failed, timed out or answered something unexpected."""


@dataclasses.dataclass(frozen=True)
class BenchConfig:
    """What a client process measures: durations in seconds, repeats, server addresses."""

    duration: float
    warmup: float
    repeat: int
    # The loopback address every server binds (--host): 127.0.0.1 or ::1.
    host: str = _DEFAULT_HOST
    addresses: dict[str, str] = dataclasses.field(default_factory=dict)
    # CURVE key files: "server" and "client" secret key files, "allowed" directory.
    curve: dict[str, str] = dataclasses.field(default_factory=dict)

    def curve_url(self, url: str, role: Literal["server", "client"]) -> str:
        """``url`` with the CURVE options of ``role`` as query parameters."""
        query = f"curve_secret_key_file={self.curve[role]}"
        if role == "server":
            query += f"&curve_public_keys_dir={self.curve['allowed']}"
        return f"{url}{'&' if '?' in url else '?'}{query}"

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

    def reset(self) -> None:
        """Forget the previous round (called while no PUSH round is running)."""
        self.count = 0
        self.first = self.last = 0.0

    def report(self) -> bytes:
        """The round's state as JSON: messages counted, when the first and the last arrived."""
        return json.dumps({"count": self.count, "first": self.first, "last": self.last}).encode()


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
    """Count the messages on ``pull`` and when they arrive (its own thread).

    Returns when the context is terminated; closes the socket.
    """
    clock = _clock
    try:
        while True:
            pull.recv()
            if not sink.count:
                sink.first = clock()
            sink.count += 1
            sink.last = clock()
    except zmq.ContextTerminated:
        pass
    finally:
        pull.close(linger=0)


def _raw_context(host: str) -> zmq.Context[zmq.Socket[bytes]]:
    """A context for raw pyzmq sockets that reach ``host`` (with ``ZMQ_IPV6`` for an IPv6 one)."""
    context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    if ":" in host:
        # pyzmq applies it to every socket the context makes from now on.
        context.setsockopt(zmq.IPV6, 1)
    return context


def _raw_server_main(
    conn: Connection, limit: float, host: str, curve: dict[str, str] | None = None
) -> None:
    """Raw pyzmq server or sink process: a ROUTER echo and a PULL counter, each on its own thread.

    With ``curve`` (the key files of `BenchConfig.curve`), also a CURVE ROUTER
    echo checked by a ``zmq.auth`` ZAP handler. Sends ``("ready", addresses)``,
    serves until told to stop (at most ``limit`` seconds), then sends
    ``("result", {"rss_mib": ...})``.
    """
    any_port = f"{tcp_endpoint(host)}:*"

    def body() -> None:
        context = _raw_context(host)
        router = context.socket(zmq.ROUTER)
        pull = context.socket(zmq.PULL)
        router.bind(any_port)
        pull.bind(any_port)
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
        auth = None
        if curve:
            auth = ThreadAuthenticator(context)
            auth.start()
            auth.configure_curve(domain="*", location=curve["allowed"])
            public, secret = zmq.auth.load_certificate(curve["server"])
            assert secret is not None  # noqa: S101 - written by this program
            secured = context.socket(zmq.ROUTER)
            secured.setsockopt(zmq.CURVE_SERVER, 1)
            secured.setsockopt(zmq.CURVE_PUBLICKEY, public)
            secured.setsockopt(zmq.CURVE_SECRETKEY, secret)
            secured.bind(any_port)
            addresses["curve_echo"] = secured.getsockopt_string(zmq.LAST_ENDPOINT)
            addresses["curve_server_key"] = public.decode()
            threads.append(
                threading.Thread(target=_raw_echo_loop, args=(secured, _RawSink()), daemon=True)
            )
        for thread in threads:
            thread.start()
        _send_result(conn, "ready", addresses)
        _wait_for_stop(conn, limit)
        if auth is not None:
            auth.stop()
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


def delivery_window(reports: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """Combine receivers' ``count``/``first``/``last`` reports into one round's figures.

    Returns ``total`` (messages counted by all), ``smallest`` (the fewest one
    receiver counted: the fanouts that all of them got) and ``window``
    (seconds from the first message received by any to the last received by any).
    """
    counted = [r for r in reports if r["count"]]
    window = (
        max(float(r["last"]) for r in counted) - min(float(r["first"]) for r in counted)
        if counted
        else 0.0
    )
    return {
        "total": float(sum(r["count"] for r in reports)),
        "smallest": float(min((r["count"] for r in reports), default=0)),
        "window": window,
    }


def _per_s(count: float, window: float) -> float:
    """Messages per second over a receivers' window."""
    return count / max(window, 1e-9)


def _raw_send_for(pushes: Sequence[zmq.Socket[bytes]], payload: bytes, duration: float) -> int:
    """Send ``payload`` on every socket of ``pushes`` for ``duration`` s; messages sent in all."""
    clock = time.perf_counter
    rounds = 0
    end = clock() + duration
    if len(pushes) == 1:
        send = pushes[0].send
        while clock() < end:
            for _ in range(64):
                send(payload)
            rounds += 64
    else:
        sends = [push.send for push in pushes]
        while clock() < end:
            for _ in range(64):
                for send in sends:
                    send(payload)
            rounds += 64
    return rounds * len(pushes)


def raw_push_round(
    pushes: Sequence[zmq.Socket[bytes]],
    controls: Sequence[zmq.Socket[bytes]],
    payload: bytes,
    duration: float,
) -> dict[str, float]:
    """Send each message on every socket of ``pushes`` for ``duration`` s, as fast as they take.

    PUSH blocks at its high-water mark, so nothing is dropped. Waits until the
    sinks behind ``controls`` counted every message sent, then returns
    `delivery_window` of their reports and ``sent`` (messages, all sockets).
    """
    for control in controls:
        _raw_control(control, b"reset")
    sent = _raw_send_for(pushes, payload, duration)
    deadline = time.perf_counter() + _CALL_TIMEOUT
    while True:
        reports = [_raw_control(control, b"stats") for control in controls]
        if sum(r["count"] for r in reports) >= sent:
            break
        if time.perf_counter() > deadline:
            raise BenchError(f"raw PULL sinks counted {reports} of {sent} messages sent")
        time.sleep(0.001)
    return {"sent": float(sent), **delivery_window(reports)}


def raw_push_pull(
    push: zmq.Socket[bytes], control: zmq.Socket[bytes], payload: bytes, duration: float
) -> float:
    """PUSH as fast as the high-water mark allows for ``duration`` s: delivered/s at the server.

    With ``push`` connected to several sinks, ``control`` stands for one of them
    only; use `raw_push_round` for those.
    """
    round_ = raw_push_round([push], [control], payload, duration)
    return _per_s(round_["total"], round_["window"])


def _raw_curve_dealer(
    context: zmq.Context[zmq.Socket[bytes]], config: BenchConfig, timeout_ms: int
) -> zmq.Socket[bytes]:
    """A DEALER to the raw server's CURVE echo with the client's key pair."""
    sock = context.socket(zmq.DEALER)
    public, secret = zmq.auth.load_certificate(config.curve["client"])
    assert secret is not None  # noqa: S101 - written by this program
    sock.setsockopt(zmq.CURVE_SERVERKEY, config.addresses["curve_server_key"].encode())
    sock.setsockopt(zmq.CURVE_PUBLICKEY, public)
    sock.setsockopt(zmq.CURVE_SECRETKEY, secret)
    for option in (zmq.RCVTIMEO, zmq.SNDTIMEO):
        sock.setsockopt(option, timeout_ms)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(config.addresses["curve_echo"])
    return sock


def _raw_client_main(conn: Connection, config: BenchConfig) -> None:
    """Raw pyzmq client process: measures every raw figure ``config.repeat`` times.

    Sends ``("result", {"samples": {figure: [values]}, "rss_mib": ...})``.
    """

    def body() -> None:
        payload = make_payload().encode()
        timeout_ms = int(_CALL_TIMEOUT * 1000)
        context = _raw_context(config.host)
        addresses = config.addresses

        def socket(kind: int, *endpoints: str) -> zmq.Socket[bytes]:
            sock = context.socket(kind)
            sock.setsockopt(zmq.LINGER, 0)
            sock.setsockopt(zmq.RCVTIMEO, timeout_ms)
            sock.setsockopt(zmq.SNDTIMEO, timeout_ms)
            for endpoint in endpoints:
                sock.connect(endpoint)
            return sock

        echo = socket(zmq.DEALER, addresses["echo"])
        secured = _raw_curve_dealer(context, config, timeout_ms)
        push = socket(zmq.PUSH, addresses["push"])
        sinks = range(FANOUT_SERVERS)
        controls = [socket(zmq.DEALER, addresses[f"sink{i}_echo"]) for i in sinks]
        fanout = [socket(zmq.PUSH, addresses[f"sink{i}_push"]) for i in sinks]
        pool = socket(zmq.PUSH, *(addresses[f"sink{i}_push"] for i in range(POOL_LISTENERS)))
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
                raw_sync_echo(secured, payload, config.warmup)
                samples["raw_curve_sync_rate"].append(
                    raw_sync_echo(secured, payload, config.duration)["rate"]
                )
                raw_pipelined_echo(secured, payload, config.warmup)
                samples["raw_curve_pipelined_rate"].append(
                    raw_pipelined_echo(secured, payload, config.duration)
                )
                raw_push_pull(push, echo, payload, config.warmup)
                samples["raw_push_rate"].append(raw_push_pull(push, echo, payload, config.duration))
                raw_push_round(fanout, controls, payload, config.warmup)
                fan = raw_push_round(fanout, controls, payload, config.duration)
                samples["raw_fanout_rate"].append(_per_s(fan["smallest"], fan["window"]))
                samples["raw_fanout_total_rate"].append(_per_s(fan["total"], fan["window"]))
                pool_controls = controls[:POOL_LISTENERS]
                raw_push_round([pool], pool_controls, payload, config.warmup)
                pooled = raw_push_round([pool], pool_controls, payload, config.duration)
                samples["raw_pool_rate"].append(_per_s(pooled["total"], pooled["window"]))
                samples["raw_pool_smallest_share"].append(
                    pooled["smallest"] / max(pooled["total"], 1.0)
                )
        finally:
            context.destroy(linger=0)
        _send_result(conn, "result", {"samples": dict(samples), "rss_mib": peak_rss_mib()})

    _run_child(conn, body)


# -- zmqactors: server process --------------------------------------------------------


class BenchEndpoint:
    """The benchmark server's endpoint: an echo, and a counting sink for casts.

    Its methods run on the server's listener threads, so the sink is locked.
    A sink process's notification endpoint counts into the same sink.
    """

    def __init__(self, transport: za.Transport | None = None) -> None:
        self._transport = transport
        self._changed = threading.Condition()
        self._count = 0
        self._first = 0.0
        self._last = 0.0

    def echo(self, data: str) -> str:
        """Return ``data``."""
        return data

    def sink(self, data: str) -> None:
        """Count one delivered cast (or notification) and when it arrived."""
        del data
        now = _clock()
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
        """Wait up to ``wait`` s for ``expected`` casts; return their count, first and last.

        ``first`` and ``last`` are `_clock` times; ``elapsed`` is last - first.
        """
        deadline = time.monotonic() + wait
        with self._changed:
            while self._count < expected:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._changed.wait(left)
            return {
                "count": float(self._count),
                "first": self._first,
                "last": self._last,
                "elapsed": self._last - self._first,
            }

    def transport_stats(self) -> dict[str, int]:
        """The transport counters of this process (what it dropped or refused)."""
        return dict(self._transport.stats.snapshot()) if self._transport is not None else {}

    def rss_mib(self) -> float:
        """The server process's peak RSS in MiB."""
        return peak_rss_mib()


class NotificationSink:
    """A notification endpoint that counts every ``info`` notification into a `BenchEndpoint`."""

    def __init__(self, counter: BenchEndpoint) -> None:
        self._counter = counter

    def info(
        self, publisher_id: str, event_type: str, payload: Any, metadata: dict[str, Any]
    ) -> None:
        """Count one delivered notification."""
        del publisher_id, event_type, metadata
        self._counter.sink(payload)


def _za_server_main(conn: Connection, url: str, limit: float, curve_url: str) -> None:
    """Server process for zmqactors: an `RPCServer` of `BenchEndpoint` on ``url``'s matchmaker.

    A second one serves the same endpoint on a CURVE transport (``curve_url``,
    topic `_CURVE_TOPIC`). Sends ``("ready", {"address": ...})`` once both are
    registered, serves until told to stop (at most ``limit`` seconds), then
    sends ``("result", {"rss_mib": ...})``.
    """

    def body() -> None:
        with (
            za.Transport.from_url(url) as transport,
            za.Transport.from_url(curve_url) as curve_transport,
        ):
            endpoint = BenchEndpoint(transport)
            servers = [
                za.RPCServer(transport, za.Target(topic=_TOPIC, server=_SERVER), [endpoint]),
                za.RPCServer(
                    curve_transport, za.Target(topic=_CURVE_TOPIC, server=_SERVER), [endpoint]
                ),
            ]
            for server in servers:
                server.start()
            _send_result(conn, "ready", {"address": servers[0].address})
            _wait_for_stop(conn, limit)
            for server in servers:
                server.stop()
            for server in servers:
                server.wait(timeout=_STOP_TIMEOUT)
        _send_result(conn, "result", {"rss_mib": peak_rss_mib()})

    _run_child(conn, body)


def _za_sink_main(conn: Connection, url: str, index: int, limit: float) -> None:
    """Sink process ``index`` for zmqactors: fanout server, control server and listeners.

    Hosts an `RPCServer` named `sink_name` on the fanout topic, serving a
    `BenchEndpoint`, and, if `sink_notify_topics` gives it topics, a
    `NotificationListener` in pool `_POOL` counting into the same endpoint.
    Sends ``("ready", {"address": ...})`` once both are registered, serves
    until told to stop (at most ``limit`` seconds), then sends
    ``("result", {"rss_mib": ...})``.
    """

    def body() -> None:
        with za.Transport.from_url(url) as transport:
            endpoint = BenchEndpoint(transport)
            services: list[za.RPCServer | za.NotificationListener] = [
                za.RPCServer(
                    transport, za.Target(topic=_SINK_TOPIC, server=sink_name(index)), [endpoint]
                )
            ]
            topics = sink_notify_topics(index)
            if topics:
                services.append(
                    za.NotificationListener(
                        transport,
                        [za.Target(topic) for topic in topics],
                        [NotificationSink(endpoint)],
                        pool=_POOL,
                    )
                )
            for service in services:
                service.start()
            _send_result(conn, "ready", {"address": services[0].address})
            _wait_for_stop(conn, limit)
            for service in services:
                service.stop()
            for service in services:
                service.wait(timeout=_STOP_TIMEOUT)
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


def za_fanout(
    fanout: za.RPCClient, sinks: Sequence[za.RPCClient], payload: str, duration: float
) -> dict[str, float]:
    """Fanout ``cast`` for ``duration`` s with checkpoint flow control: delivered/s at ``sinks``.

    ``sinks`` are clients of each server the fanout reaches, by server name.
    Returns ``rate`` (fanouts/s that every server got, which is also each
    server's messages/s), ``total_rate`` (messages/s, all servers), ``sent``
    and ``delivered`` (messages, all servers).
    """
    for sink in sinks:
        sink.call("sink_reset")
    clock = time.perf_counter
    cast = fanout.cast
    sent = 0
    previous: list[concurrent.futures.Future[Any]] = []
    end = clock() + duration
    while clock() < end:
        for _ in range(_FANOUT_BATCH):
            cast("sink", data=payload)
        sent += _FANOUT_BATCH
        # Each checkpoint follows the batch on the socket to its server.
        checkpoints = [sink.call_async("checkpoint") for sink in sinks]
        for future in previous:
            future.result(timeout=_CALL_TIMEOUT)
        previous = checkpoints
    for future in previous:
        future.result(timeout=_CALL_TIMEOUT)
    stats = [sink.call_async("sink_stats", expected=sent, wait=_CALL_TIMEOUT / 2) for sink in sinks]
    window = delivery_window([future.result(timeout=_CALL_TIMEOUT) for future in stats])
    return {
        "rate": _per_s(window["smallest"], window["window"]),
        "total_rate": _per_s(window["total"], window["window"]),
        "sent": float(sent * len(sinks)),
        "delivered": window["total"],
    }


def _sink_reports(sinks: Sequence[za.RPCClient], expected: int, wait: float) -> list[Any]:
    """Each sink's `BenchEndpoint.sink_stats`, asked of all at once."""
    futures = [sink.call_async("sink_stats", expected=expected, wait=wait) for sink in sinks]
    return [future.result(timeout=_CALL_TIMEOUT + wait) for future in futures]


def _await_delivered(
    sinks: Sequence[za.RPCClient], at_least: int, since: float, timeout: float
) -> int:
    """Poll the sinks' counts until together they reach ``at_least``; return the sum.

    Sleeps between polls about as long as the rest should take at the rate
    delivered since ``since`` (`time.perf_counter`), so that polling costs the
    listeners little. Raises `BenchError` after ``timeout`` seconds.
    """
    clock = time.perf_counter
    deadline = clock() + timeout
    while True:
        futures = [sink.call_async("checkpoint") for sink in sinks]
        counted = sum(int(future.result(timeout=_CALL_TIMEOUT)) for future in futures)
        if counted >= at_least:
            return counted
        now = clock()
        if now > deadline:
            raise BenchError(f"listeners counted {counted} notifications, expected {at_least}")
        rate = max(counted / max(now - since, 1e-3), 1000.0)
        time.sleep(min(0.01, max(0.0002, (at_least - counted) / rate)))


def za_notifications(
    notifier: za.Notifier, sinks: Sequence[za.RPCClient], payload: str, duration: float
) -> dict[str, float]:
    """``notifier.info`` for ``duration`` s, paced on the listeners' counts: delivered/s.

    ``sinks`` are clients of the RPC servers in the listeners' processes,
    which count what their listener got. After every `_CAST_BATCH`
    notifications the client waits until all but the last batch have been
    counted. Returns ``rate`` (delivered/s, all listeners' first-to-last
    window), ``sent``, ``delivered`` and ``smallest_share`` (the fraction of
    the notifications the least loaded listener got).
    """
    for sink in sinks:
        sink.call("sink_reset")
    clock = time.perf_counter
    info = notifier.info
    sent = batches = 0
    start = clock()
    end = start + duration
    while clock() < end:
        for _ in range(_CAST_BATCH):
            sent += info(_EVENT_TYPE, payload)
        batches += 1
        if sent != batches * _CAST_BATCH:
            raise BenchError(f"{notifier!r} reached {sent} listeners in {batches} batches")
        _await_delivered(sinks, sent - _CAST_BATCH, start, _CALL_TIMEOUT / 2)
    with contextlib.suppress(BenchError):  # a shortfall is reported as lost, below
        _await_delivered(sinks, sent, start, _CALL_TIMEOUT / 2)
    window = delivery_window(_sink_reports(sinks, 0, 0.0))
    return {
        "rate": _per_s(window["total"], window["window"]),
        "sent": float(sent),
        "delivered": window["total"],
        "smallest_share": window["smallest"] / max(window["total"], 1.0),
    }


def _za_client_main(conn: Connection, config: BenchConfig, url: str) -> None:
    """Client process for zmqactors: measures every zmqactors figure ``config.repeat`` times.

    Sends ``("result", {"samples": {figure: [values]}, "rss_mib": ...,
    "server_rss_mib": ..., "transport_stats": {process: counters}})``; the
    server's RSS and every process's transport counters are asked over RPC at
    the end.
    """

    def body() -> None:
        payload = make_payload()
        samples: dict[str, list[float]] = collections.defaultdict(list)
        warmup, duration = config.warmup, config.duration
        with (
            za.Transport.from_url(url) as transport,
            za.Transport.from_url(config.curve_url(url, "client")) as curve_transport,
        ):
            client = za.RPCClient(transport, za.Target(topic=_TOPIC), timeout=_CALL_TIMEOUT)
            curve_client = za.RPCClient(
                curve_transport, za.Target(topic=_CURVE_TOPIC), timeout=_CALL_TIMEOUT
            )
            sink_clients = [
                za.RPCClient(
                    transport,
                    za.Target(topic=_SINK_TOPIC, server=sink_name(i)),
                    timeout=_CALL_TIMEOUT,
                )
                for i in range(FANOUT_SERVERS)
            ]
            fanout = za.RPCClient(
                transport, za.Target(topic=_SINK_TOPIC), timeout=_CALL_TIMEOUT
            ).prepare(fanout=True)
            notify_one = za.Notifier(transport, _PUBLISHER, topics=(_NOTIFY_ONE_TOPIC,))
            notify_pool = za.Notifier(transport, _PUBLISHER, topics=(_NOTIFY_POOL_TOPIC,))
            pool_clients = sink_clients[:POOL_LISTENERS]
            for _ in range(config.repeat):
                za_sync_calls(client, payload, warmup)
                sync = za_sync_calls(client, payload, duration)
                samples["za_sync_rate"].append(sync["rate"])
                samples["za_p50_us"].append(sync["p50_us"])
                samples["za_p99_us"].append(sync["p99_us"])
                za_threaded_calls(client, payload, warmup)
                samples["za_threads_rate"].append(za_threaded_calls(client, payload, duration))
                za_async_calls(client, payload, warmup)
                samples["za_async_rate"].append(za_async_calls(client, payload, duration))
                za_sync_calls(curve_client, payload, warmup)
                samples["za_curve_sync_rate"].append(
                    za_sync_calls(curve_client, payload, duration)["rate"]
                )
                za_async_calls(curve_client, payload, warmup)
                samples["za_curve_async_rate"].append(
                    za_async_calls(curve_client, payload, duration)
                )
                za_casts(client, payload, warmup)
                casts = za_casts(client, payload, duration)
                samples["za_cast_rate"].append(casts["rate"])
                samples["za_cast_lost"].append(casts["sent"] - casts["delivered"])
                za_fanout(fanout, sink_clients, payload, warmup)
                fan = za_fanout(fanout, sink_clients, payload, duration)
                samples["za_fanout_rate"].append(fan["rate"])
                samples["za_fanout_total_rate"].append(fan["total_rate"])
                samples["za_fanout_lost"].append(fan["sent"] - fan["delivered"])
                za_notifications(notify_one, sink_clients[:1], payload, warmup)
                one = za_notifications(notify_one, sink_clients[:1], payload, duration)
                samples["za_notify_one_rate"].append(one["rate"])
                samples["za_notify_one_lost"].append(one["sent"] - one["delivered"])
                za_notifications(notify_pool, pool_clients, payload, warmup)
                pooled = za_notifications(notify_pool, pool_clients, payload, duration)
                samples["za_notify_pool_rate"].append(pooled["rate"])
                samples["za_notify_pool_lost"].append(pooled["sent"] - pooled["delivered"])
                samples["za_notify_pool_smallest_share"].append(pooled["smallest_share"])
            server_rss = float(client.call("rss_mib"))
            stats = {
                "client": dict(transport.stats.snapshot()),
                "curve_client": dict(curve_transport.stats.snapshot()),
                "server": client.call("transport_stats"),
            }
            for i, sink in enumerate(sink_clients):
                stats[sink_name(i)] = sink.call("transport_stats")
        _send_result(
            conn,
            "result",
            {
                "samples": dict(samples),
                "rss_mib": peak_rss_mib(),
                "server_rss_mib": server_rss,
                "transport_stats": stats,
            },
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


# Figures measured per repeat by each side's client (for its time budget).
_RAW_PHASES: Final = 7
_ZA_PHASES: Final = 9


def _run_side(side: Literal["raw", "zmqactors"], config: BenchConfig, url: str) -> dict[str, Any]:
    """Start one side's server, sink and client processes, run the client, stop the others.

    Returns the client's results with the peak RSS of the server
    (``server_rss_mib``) and of the largest sink (``sink_rss_mib``). Raises
    `BenchError`.
    """
    phases = _RAW_PHASES if side == "raw" else _ZA_PHASES
    limit = config.budget(phases) + _START_TIMEOUT
    children = _Children()
    try:
        servers: list[tuple[SpawnProcess, Connection]] = []
        if side == "raw":
            servers.append(
                children.start("raw-server", _raw_server_main, limit, config.host, config.curve)
            )
            servers.extend(
                children.start(f"raw-sink-{i}", _raw_server_main, limit, config.host)
                for i in range(FANOUT_SERVERS)
            )
        else:
            servers.append(
                children.start(
                    "zmqactors-server",
                    _za_server_main,
                    url,
                    limit,
                    config.curve_url(url, "server"),
                )
            )
            servers.extend(
                children.start(f"zmqactors-sink-{i}", _za_sink_main, url, i, limit)
                for i in range(FANOUT_SERVERS)
            )
        ready = [_expect(conn, process, "ready", _START_TIMEOUT) for process, conn in servers]
        if side == "raw":
            addresses = dict(ready[0])
            for i, sink in enumerate(ready[1:]):
                addresses[f"sink{i}_echo"] = sink["echo"]
                addresses[f"sink{i}_push"] = sink["push"]
            client_config = dataclasses.replace(config, addresses=addresses)
            client, client_conn = children.start("raw-client", _raw_client_main, client_config)
        else:
            client, client_conn = children.start("zmqactors-client", _za_client_main, config, url)
        result: dict[str, Any] = _expect(client_conn, client, "result", config.budget(phases))
        for _, conn in servers:
            with contextlib.suppress(OSError):
                conn.send("stop")
        final = [_expect(conn, process, "result", _STOP_TIMEOUT) for process, conn in servers]
        result["server_rss_mib"] = max(
            float(final[0]["rss_mib"]), float(result.get("server_rss_mib", 0.0))
        )
        result["sink_rss_mib"] = max(float(sink["rss_mib"]) for sink in final[1:])
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
            "fanout_per_s",
            f"fanouts/s, all {FANOUT_SERVERS} servers got",
            "1/s",
            _median(z, "za_fanout_rate"),
            _median(r, "raw_fanout_rate"),
            f"{FANOUT_SERVERS} PUSH->PULL, 1 per server",
        ),
        Figure(
            "fanout_messages_per_s",
            f"fanout msgs/s, {FANOUT_SERVERS} servers total",
            "1/s",
            _median(z, "za_fanout_total_rate"),
            _median(r, "raw_fanout_total_rate"),
            f"{FANOUT_SERVERS} PUSH->PULL, 1 per server",
        ),
        Figure(
            "notifications_per_s",
            "notifications/s, 1 listener",
            "1/s",
            _median(z, "za_notify_one_rate"),
            _median(r, "raw_push_rate"),
            "PUSH->PULL",
        ),
        Figure(
            "pool_notifications_per_s",
            f"notifications/s, pool of {POOL_LISTENERS}",
            "1/s",
            _median(z, "za_notify_pool_rate"),
            _median(r, "raw_pool_rate"),
            f"PUSH->{POOL_LISTENERS} PULL",
        ),
        Figure(
            "curve_sync_calls_per_s",
            "sync calls/s (1 thread), CURVE",
            "1/s",
            _median(z, "za_curve_sync_rate"),
            _median(r, "raw_curve_sync_rate"),
            f"CURVE {echo1}",
            0.5,
        ),
        Figure(
            "curve_async_calls_per_s",
            f"call_async/s ({PIPELINE_DEPTH} out), CURVE",
            "1/s",
            _median(z, "za_curve_async_rate"),
            _median(r, "raw_curve_pipelined_rate"),
            f"CURVE {echo100}",
            0.8,
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
        Figure(
            "sink_peak_rss_mib",
            "sink peak RSS (MiB)",
            "MiB",
            float(zmq_side["sink_rss_mib"]),
            float(raw["sink_rss_mib"]),
            "raw sink",
        ),
    ]


def curve_costs(raw: dict[str, Any], zmq_side: dict[str, Any]) -> dict[str, float]:
    """What CURVE costs each side: ``1 - rate with CURVE / rate without``, from the medians.

    Keys: ``zmqactors_sync``, ``zmqactors_pipelined`` (``call_async``),
    ``raw_sync``, ``raw_pipelined``.
    """
    r: dict[str, list[float]] = raw["samples"]
    z: dict[str, list[float]] = zmq_side["samples"]
    pairs = {
        "zmqactors_sync": (z, "za_curve_sync_rate", "za_sync_rate"),
        "zmqactors_pipelined": (z, "za_curve_async_rate", "za_async_rate"),
        "raw_sync": (r, "raw_curve_sync_rate", "raw_sync_rate"),
        "raw_pipelined": (r, "raw_curve_pipelined_rate", "raw_pipelined_rate"),
    }
    return {
        name: 1.0 - _median(samples, on) / _median(samples, off)
        for name, (samples, on, off) in pairs.items()
    }


def format_curve_costs(costs: Mapping[str, float]) -> str:
    """One line per side: what CURVE costs in % of throughput, against the target."""
    worst = max(costs["zmqactors_sync"], costs["zmqactors_pipelined"])
    met = "yes" if worst < CURVE_COST_TARGET else "NO"
    return (
        f"CURVE cost, zmqactors: sync {costs['zmqactors_sync']:.1%}, "
        f"pipelined {costs['zmqactors_pipelined']:.1%} "
        f"(target < {CURVE_COST_TARGET:.0%}: {met})\n"
        f"CURVE cost, raw pyzmq: sync {costs['raw_sync']:.1%}, "
        f"pipelined {costs['raw_pipelined']:.1%}"
    )


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
        f"{'figure':<34}{'zmqactors':>12}{'raw pyzmq':>12}{'ratio':>9}"
        f"{'target':>10}{'met':>5}  baseline"
    )
    lines = [header, "-" * len(header)]
    for fig in figures:
        target = "-" if fig.target is None else f">= {fig.target:.1f}x"
        met = "" if fig.met is None else ("yes" if fig.met else "NO")
        lines.append(
            f"{fig.label:<34}{number(fig.zmqactors, fig.unit):>12}{number(fig.raw, fig.unit):>12}"
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
        "--repeat",
        type=int,
        default=None,
        help="repeats; the median is reported (default 3, 1 with --quick)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="0.5 s per measurement, 0.1 s warm-up, 1 repeat unless given (smoke test)",
    )
    parser.add_argument(
        "--host",
        default=_DEFAULT_HOST,
        help="the loopback address servers bind, 127.0.0.1 (default) or ::1 for IPv6",
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    try:
        args.host = check_host("--host", args.host, wildcard=False)
    except ValueError as exc:
        parser.error(str(exc))
    if args.quick:
        args.duration = 0.5
        args.warmup = 0.1 if args.warmup is None else args.warmup
        args.repeat = 1 if args.repeat is None else args.repeat
    if args.warmup is None:
        args.warmup = 0.5
    if args.repeat is None:
        args.repeat = 3
    if not 0 < args.duration <= 600 or not 0 <= args.warmup <= 60:
        parser.error("--duration must be in (0, 600] and --warmup in [0, 60] seconds")
    if not 1 <= args.repeat <= 100:
        parser.error("--repeat must be from 1 to 100")
    return args


_LOSSES: Final = {
    "casts": "za_cast_lost",
    "fanout messages": "za_fanout_lost",
    "notifications (1 listener)": "za_notify_one_lost",
    f"notifications (pool of {POOL_LISTENERS})": "za_notify_pool_lost",
}


def losses(zmq_side: dict[str, Any]) -> dict[str, float]:
    """Messages sent but not delivered, over every measured round, by kind."""
    samples: dict[str, list[float]] = zmq_side["samples"]
    return {kind: sum(samples.get(key, [])) for kind, key in _LOSSES.items()}


def drop_counters(zmq_side: dict[str, Any]) -> dict[str, dict[str, int]]:
    """The zmqactors processes' nonzero transport counters, by process."""
    stats: dict[str, dict[str, int]] = zmq_side.get("transport_stats", {})
    return {process: dict(counters) for process, counters in stats.items() if counters}


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
        "curve_cost": {
            **curve_costs(raw, zmq_side),
            "target": CURVE_COST_TARGET,
        },
        "lost": losses(zmq_side),
        "transport_stats": zmq_side.get("transport_stats", {}),
        "config": {
            "duration": config.duration,
            "warmup": config.warmup,
            "repeat": config.repeat,
            "host": config.host,
            "payload_bytes": PAYLOAD_SIZE,
            "pipeline_depth": PIPELINE_DEPTH,
            "caller_threads": CALLER_THREADS,
            "cast_batch": _CAST_BATCH,
            "fanout_batch": _FANOUT_BATCH,
            "fanout_servers": FANOUT_SERVERS,
            "pool_listeners": POOL_LISTENERS,
        },
        "environment": _environment(),
    }
    return json.dumps(document, indent=2)


def _write_keys(directory: str) -> dict[str, str]:
    """Key pairs for a server and a client, and an allow-list of both, under ``directory``."""
    keys = Path(directory) / "curve"
    allowed = keys / "allowed"
    paths: dict[str, str] = {"allowed": str(allowed)}
    for role in ("server", "client"):
        public, secret = security.write_key_pair(str(keys), role)
        paths[role] = str(secret)
        allowed.mkdir(exist_ok=True)
        shutil.copy(public, allowed)
    return paths


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print its report; 0 on success, 1 if a process failed."""
    args = _parse_args(argv)
    configure_logging()
    config = BenchConfig(
        duration=args.duration, warmup=args.warmup, repeat=args.repeat, host=args.host
    )
    directory = tempfile.mkdtemp(prefix="zmqactors-bench-")
    url = f"zmq+file://{directory}/matchmaker?bind_address={config.host}"
    try:
        config = dataclasses.replace(config, curve=_write_keys(directory))
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
    lost = losses(zmq_side)
    if any(lost.values()):
        print(
            "warning: sent but not delivered: "
            + ", ".join(f"{count:,.0f} {kind}" for kind, count in lost.items() if count),
            file=sys.stderr,
        )
    if args.json:
        print(_report_json(figures, raw, zmq_side, config))
        return 0
    env = _environment()
    print(
        f"zmqactors {env['zmqactors']} / Python {env['python']} / pyzmq {env['pyzmq']} "
        f"(libzmq {env['libzmq']}) / {env['cpus']} CPUs; {PAYLOAD_SIZE} B arguments, "
        f"TCP loopback {config.host}; median of {config.repeat} x {config.duration:g} s"
    )
    print()
    print(format_table(figures))
    print()
    print(format_curve_costs(curve_costs(raw, zmq_side)))
    print(
        "sent - delivered, all rounds: "
        + ", ".join(f"{kind} {count:,.0f}" for kind, count in lost.items())
    )
    counters = drop_counters(zmq_side)
    print(
        "zmqactors transport counters: "
        + (
            "; ".join(
                f"{process} "
                + ", ".join(f"{name}={value}" for name, value in sorted(counts.items()))
                for process, counts in counters.items()
            )
            or "none"
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
