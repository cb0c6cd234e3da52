"""``make bench-prototype``: what a sync call would cost with no thread hand-off inside a process.

    python -m benchmarks.prototype [--rounds 5] [--duration 2] [--threads 16]

The stage budget (ARCHITECTURE.md, "Hops and costs of one call") shows four
hand-offs between threads of one process on a sync call's path, two in the
client (caller to reply-waiter and back) and two in the server (poller to
worker and back). This prototype measures the smallest design change that
removes them, keeping every byte of Python work the library does per call:

- client: the calling thread owns a DEALER per server and does the
  reply-waiter's part itself (encode with `zmqactors.wire`, send, wait in
  ``poll`` for the reply, decode it);
- server: one thread reads the ROUTER and runs the request inline through
  the library's own `Dispatcher` (decode, method lookup, call, encode).

Against it, in the same run and rounds interleaved: zmqactors itself
(`RPCClient.call` against an `RPCServer`) and raw pyzmq's echo (the
ceiling: no Python work beyond the sockets). Each server runs in its own
process; the clients run in this one. Prints calls/s, 1 thread and
``--threads`` threads, medians with the spread, and ratios.

A prototype, not a design: it has none of what the hand-offs buy
(deadlines, fairness and bounds in the server, a poller that never runs
user code, a socket per process rather than per calling thread and
server), which is what the note in ARCHITECTURE.md weighs.
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import statistics
import tempfile
import threading
import time
from typing import TYPE_CHECKING, Any

import structlog
import zmq

import zmqactors as za
from zmqactors import wire
from zmqactors.core.dispatch import Dispatcher
from zmqactors.core.stats import Stats
from zmqactors.options import Settings

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

_PAYLOAD = "x" * 100
_TIMEOUT_MS = 10_000


class _Echo:
    def echo(self, data: str) -> str:
        return data


def _quiet() -> None:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))


def _bound_router(
    conn: Connection,
) -> tuple[zmq.Context[zmq.Socket[bytes]], zmq.Socket[bytes], zmq.Poller]:
    """A ROUTER on a random loopback port, told to the parent through ``conn``."""
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    sock = ctx.socket(zmq.ROUTER)
    conn.send(sock.bind_to_random_port("tcp://127.0.0.1"))
    poller = zmq.Poller()
    poller.register(sock, zmq.POLLIN)
    return ctx, sock, poller


def _inline_server(conn: Connection) -> None:
    """One thread: read the ROUTER, run the request through `Dispatcher`, answer."""
    _quiet()
    target = za.Target("proto", server="inline")
    settings = Settings()
    dispatcher = Dispatcher(
        target,
        [_Echo()],
        settings.max_message_size,
        Stats(),
        decode_limits=settings.decode_limits,
    )
    ctx, sock, poller = _bound_router(conn)
    while not conn.poll():
        if not poller.poll(100):
            continue
        while True:
            try:
                client, head, body = sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                break
            wire.split_header(head)
            reply = dispatcher.handle(body, client, time.monotonic())
            if reply is not None:
                sock.send_multipart((client, wire.HEADER, reply))
    sock.close(linger=0)
    ctx.term()


def _raw_server(conn: Connection) -> None:
    """Raw pyzmq echo: the ceiling."""
    ctx, sock, poller = _bound_router(conn)
    while not conn.poll():
        if poller.poll(100):
            sock.send_multipart(sock.recv_multipart())
    sock.close(linger=0)
    ctx.term()


def _za_server(conn: Connection, url: str) -> None:
    _quiet()
    with za.Transport.from_url(url) as transport:
        server = za.RPCServer(transport, za.Target("proto", server="za"), [_Echo()])
        server.start()
        conn.send(0)
        conn.recv()
        server.stop()
        server.wait(timeout=10)


class _InlineClient:
    """The calling thread's own DEALER and the library's codec: no reply-waiter."""

    def __init__(self, ctx: zmq.Context[zmq.Socket[bytes]], port: int) -> None:
        self._sock = ctx.socket(zmq.DEALER)
        self._sock.connect(f"tcp://127.0.0.1:{port}")
        self._target = za.Target("proto", server="inline")
        self._dest = wire.destination("proto", "inline")
        self._limits = Settings().decode_limits

    def call(self, data: str) -> Any:
        msg_id = wire.new_msg_id()
        header, body = wire.request_frames(
            self._target,
            wire.CallKind.CALL,
            "echo",
            args={"data": data},
            context={},
            timeout=10.0,
            msg_id=msg_id,
        )
        self._sock.send_multipart((header + self._dest, body))
        if not self._sock.poll(_TIMEOUT_MS):
            raise TimeoutError
        reply = wire.decode(self._sock.recv_multipart(), self._limits)
        if not isinstance(reply, wire.Reply) or reply.msg_id != msg_id:
            raise TypeError(reply)
        return reply.result

    def close(self) -> None:
        self._sock.close(linger=0)


class _RawClient:
    def __init__(self, ctx: zmq.Context[zmq.Socket[bytes]], port: int) -> None:
        self._sock = ctx.socket(zmq.DEALER)
        self._sock.connect(f"tcp://127.0.0.1:{port}")
        self._payload = _PAYLOAD.encode()

    def call(self, data: str) -> Any:
        del data
        self._sock.send(self._payload)
        if not self._sock.poll(_TIMEOUT_MS):
            raise TimeoutError
        return self._sock.recv()

    def close(self) -> None:
        self._sock.close(linger=0)


def _rate(make_call: Any, threads: int, duration: float) -> float:
    """Calls/s from ``threads`` threads, each with its own ``make_call()`` callable."""
    counts = [0] * threads
    calls = [make_call() for _ in range(threads)]
    for call in calls:  # connect and warm up
        for _ in range(50):
            call(_PAYLOAD)
    start = time.perf_counter()
    end = start + duration

    def run(i: int) -> None:
        call = calls[i]
        n = 0
        while time.perf_counter() < end:
            call(_PAYLOAD)
            n += 1
        counts[i] = n

    workers = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(duration + 30)
    return sum(counts) / (time.perf_counter() - start)


def _report(
    results: dict[tuple[str, int], list[float]], names: list[str], rounds: int, threads: int
) -> None:
    print(f"\nsync calls/s, medians of {rounds} interleaved rounds (min-max), 100 B argument")
    for count in (1, threads):
        za_median = statistics.median(results[("zmqactors", count)])
        for name in names:
            rates = results[(name, count)]
            med = statistics.median(rates)
            print(
                f"  {count:>2} thread(s)  {name:<24} {med:>9,.0f}  ({min(rates):,.0f}-"
                f"{max(rates):,.0f})  {med / za_median:.2f}x zmqactors"
            )


def main(argv: list[str] | None = None) -> None:
    """Run the rounds and print the table."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.prototype", description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=float, default=2.0)
    parser.add_argument("--threads", type=int, default=16)
    args = parser.parse_args(argv)
    _quiet()
    spawn = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory() as directory:
        url = f"zmq+file://{directory}/mm?bind_address=127.0.0.1"
        pipes = {name: spawn.Pipe() for name in ("raw", "inline", "za")}
        procs = [
            spawn.Process(target=_raw_server, args=(pipes["raw"][1],)),
            spawn.Process(target=_inline_server, args=(pipes["inline"][1],)),
            spawn.Process(target=_za_server, args=(pipes["za"][1], url)),
        ]
        for proc in procs:
            proc.start()
        ports = {name: pipe[0].recv() for name, pipe in pipes.items()}
        ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        results: dict[tuple[str, int], list[float]] = {}
        made: list[Any] = []
        with za.Transport.from_url(url) as transport:
            za_client = za.RPCClient(transport, za.Target("proto"), timeout=10.0)

            def za_call() -> Any:
                return lambda data: za_client.call("echo", data=data)

            def new(cls: Any, port: int) -> Any:
                client = cls(ctx, port)
                made.append(client)
                return client.call

            makers = {
                "raw pyzmq echo": lambda: new(_RawClient, ports["raw"]),
                "prototype (no hand-off)": lambda: new(_InlineClient, ports["inline"]),
                "zmqactors": za_call,
            }
            for r in range(args.rounds):
                for threads in (1, args.threads):
                    for name, maker in makers.items():
                        rate = _rate(maker, threads, args.duration)
                        results.setdefault((name, threads), []).append(rate)
                print(f"round {r + 1}/{args.rounds} done", flush=True)
        for client in made:
            client.close()
        ctx.term()
        for pipe in pipes.values():
            pipe[0].send("stop")
        for proc in procs:
            proc.join(15)
    _report(results, list(makers), args.rounds, args.threads)


if __name__ == "__main__":
    main()
