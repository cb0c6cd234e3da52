"""The raw pyzmq baseline: its server (or sink) process and its client process."""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import threading
import time
from typing import TYPE_CHECKING, Any, Final

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator

from benchmarks.common import (
    CALL_TIMEOUT,
    FANOUT_SERVERS,
    PIPELINE_DEPTH,
    POOL_LISTENERS,
    STOP_TIMEOUT,
    BenchConfig,
    BenchError,
    delivery_window,
    make_payload,
    peak_rss_mib,
    per_s,
    round_trips,
    shared_clock,
    with_cpu,
)
from benchmarks.processes import run_child, send_result, serve_rounds, wait_for_stop
from benchmarks.sweep import sweep
from zmqactors._addresses import tcp_endpoint

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from multiprocessing.connection import Connection


# Control frames on the raw echo socket start with a NUL; echo payloads never do.
_CONTROL: Final = b"\x00"


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
    clock = shared_clock
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


def raw_server_main(
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
            "pid": str(os.getpid()),
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
        send_result(conn, "ready", addresses)
        wait_for_stop(conn, limit)
        if auth is not None:
            auth.stop()
        context.term()  # the threads get ContextTerminated and close their sockets
        for thread in threads:
            thread.join(STOP_TIMEOUT)
        send_result(conn, "result", {"rss_mib": peak_rss_mib()})

    run_child(conn, body)


def _raw_control(sock: zmq.Socket[bytes], command: bytes) -> dict[str, Any]:
    """Send a control frame on the echo DEALER and return the server's JSON answer."""
    sock.send(_CONTROL + command)
    answer: dict[str, Any] = json.loads(sock.recv())
    return answer


def raw_sync_echo(sock: zmq.Socket[bytes], payload: bytes, duration: float) -> dict[str, float]:
    """Echo round trips with one outstanding for ``duration`` s: rate/s, p50/p99 µs."""

    def echo() -> None:
        sock.send(payload)
        sock.recv()

    return round_trips(echo, duration)


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
    deadline = time.perf_counter() + CALL_TIMEOUT
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
    return per_s(round_["total"], round_["window"])


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


@dataclasses.dataclass(frozen=True)
class _RawSockets:
    """The raw client's sockets, all used by its main thread only."""

    echo: zmq.Socket[bytes]
    secured: zmq.Socket[bytes]
    push: zmq.Socket[bytes]
    controls: list[zmq.Socket[bytes]]
    fanout: list[zmq.Socket[bytes]]
    pool: zmq.Socket[bytes]


def _raw_figures(
    sockets: _RawSockets, payload: bytes, config: BenchConfig, server_pid: int
) -> dict[str, float]:
    """One round of every raw figure but the sweep's, each after its warm-up."""
    warmup, duration = config.warmup, config.duration
    echo, secured = sockets.echo, sockets.secured
    figures: dict[str, float] = {}
    raw_pipelined_echo(echo, payload, warmup)
    pipelined = with_cpu(functools.partial(raw_pipelined_echo, echo, payload, duration), server_pid)
    figures["raw_pipelined_rate"] = pipelined["rate"]
    figures["raw_pipelined_client_cpu_us"] = pipelined["client_cpu_us"]
    figures["raw_pipelined_server_cpu_us"] = pipelined["server_cpu_us"]
    raw_sync_echo(secured, payload, warmup)
    figures["raw_curve_sync_rate"] = raw_sync_echo(secured, payload, duration)["rate"]
    raw_pipelined_echo(secured, payload, warmup)
    figures["raw_curve_pipelined_rate"] = raw_pipelined_echo(secured, payload, duration)
    raw_push_pull(sockets.push, echo, payload, warmup)
    figures["raw_push_rate"] = raw_push_pull(sockets.push, echo, payload, duration)
    raw_push_round(sockets.fanout, sockets.controls, payload, warmup)
    fan = raw_push_round(sockets.fanout, sockets.controls, payload, duration)
    figures["raw_fanout_rate"] = per_s(fan["smallest"], fan["window"])
    figures["raw_fanout_total_rate"] = per_s(fan["total"], fan["window"])
    pool_controls = sockets.controls[:POOL_LISTENERS]
    raw_push_round([sockets.pool], pool_controls, payload, warmup)
    pooled = raw_push_round([sockets.pool], pool_controls, payload, duration)
    figures["raw_pool_rate"] = per_s(pooled["total"], pooled["window"])
    figures["raw_pool_smallest_share"] = pooled["smallest"] / max(pooled["total"], 1.0)
    return figures


def raw_client_main(conn: Connection, config: BenchConfig, limit: float) -> None:
    """Raw pyzmq client process: every raw figure, once per ``"round"`` the orchestrator asks.

    Sends ``("ready", {})``, then ``("round", {"figures": ..., "cdfs": ...})``
    per round and, once stopped, ``("result", {"rss_mib": ...})``.
    """

    def body() -> None:
        payload = make_payload().encode()
        timeout_ms = int(CALL_TIMEOUT * 1000)
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

        def open_caller() -> tuple[Callable[[], object], Callable[[], None]]:
            # Made in the caller thread, used and closed there only.
            sock = socket(zmq.DEALER, addresses["echo"])

            def echo() -> None:
                sock.send(payload)
                sock.recv()

            return echo, functools.partial(sock.close, linger=0)

        sinks = range(FANOUT_SERVERS)
        sockets = _RawSockets(
            echo=socket(zmq.DEALER, addresses["echo"]),
            secured=_raw_curve_dealer(context, config, timeout_ms),
            push=socket(zmq.PUSH, addresses["push"]),
            controls=[socket(zmq.DEALER, addresses[f"sink{i}_echo"]) for i in sinks],
            fanout=[socket(zmq.PUSH, addresses[f"sink{i}_push"]) for i in sinks],
            pool=socket(zmq.PUSH, *(addresses[f"sink{i}_push"] for i in range(POOL_LISTENERS))),
        )

        def one_round() -> dict[str, object]:
            figures, cdfs = sweep("raw", open_caller, config.warmup, config.duration)
            figures.update(_raw_figures(sockets, payload, config, int(addresses["pid"])))
            return {"figures": figures, "cdfs": cdfs}

        try:
            send_result(conn, "ready", {})
            serve_rounds(conn, one_round, limit)
        finally:
            context.destroy(linger=0)
        send_result(conn, "result", {"rss_mib": peak_rss_mib()})

    run_child(conn, body)
