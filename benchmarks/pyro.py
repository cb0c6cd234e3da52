"""The Pyro5 peer: its server process and its client process.

Pyro5 as its documentation has it for threads: the ``thread`` server type (a
pool thread per connection), the ``msgpack`` serializer on both ends, and one
`Pyro5.api.Proxy` per caller thread (a proxy belongs to the thread that made
it). Both ends set ``SOCK_NODELAY`` as ZeroMQ does for TCP, so that neither
side waits on Nagle's algorithm; Pyro5's default leaves it off.
"""

from __future__ import annotations

import functools
import os
import threading
from typing import TYPE_CHECKING

import Pyro5.api

from benchmarks.common import (
    CALL_TIMEOUT,
    STOP_TIMEOUT,
    BenchConfig,
    make_payload,
    peak_rss_mib,
)
from benchmarks.processes import run_child, send_result, serve_rounds, wait_for_stop
from benchmarks.sweep import sweep

if TYPE_CHECKING:
    from collections.abc import Callable
    from multiprocessing.connection import Connection


def _configure(*, timeout: float) -> None:
    """Pyro5's settings for this process (an application: it may set Pyro5's globals)."""
    Pyro5.config.SERVERTYPE = "thread"
    Pyro5.config.SERIALIZER = "msgpack"
    Pyro5.config.SOCK_NODELAY = True
    Pyro5.config.COMMTIMEOUT = timeout


class PyroEcho:
    """The Pyro5 server's object: one instance serves every connection."""

    def echo(self, data: str) -> str:
        """Return ``data``."""
        return data


Pyro5.api.expose(PyroEcho)


def pyro_server_main(conn: Connection, limit: float, host: str) -> None:
    """Pyro5 server process: a thread-server daemon with `PyroEcho` on ``host``, port 0.

    Sends ``("ready", {"uri": ..., "pid": ...})``, serves until told to stop
    (at most ``limit`` seconds), then sends ``("result", {"rss_mib": ...})``.
    """

    def body() -> None:
        # No timeout on the server's side: a caller thread may idle between rounds.
        _configure(timeout=0.0)
        daemon = Pyro5.api.Daemon(host=host, port=0)
        uri = daemon.register(PyroEcho(), "bench.echo")
        loop = threading.Thread(target=daemon.requestLoop, name="pyro-daemon", daemon=True)
        loop.start()
        send_result(conn, "ready", {"uri": str(uri), "pid": os.getpid()})
        wait_for_stop(conn, limit)
        daemon.shutdown()
        loop.join(STOP_TIMEOUT)
        send_result(conn, "result", {"rss_mib": peak_rss_mib()})

    run_child(conn, body)


def pyro_client_main(conn: Connection, config: BenchConfig, uri: str, limit: float) -> None:
    """Pyro5 client process: the concurrency sweep, once per ``"round"`` the orchestrator asks.

    Sends ``("ready", {})``, then ``("round", {"figures": ..., "cdfs": ...})``
    per round and, once stopped, ``("result", {"rss_mib": ...})``.
    """

    def body() -> None:
        _configure(timeout=CALL_TIMEOUT)
        payload = make_payload()

        def open_caller() -> tuple[Callable[[], object], Callable[[], None]]:
            proxy = Pyro5.api.Proxy(uri)
            proxy._pyroBind()  # noqa: SLF001 - Pyro5's public API has the underscore
            echo: Callable[[], object] = functools.partial(proxy.echo, payload)
            release: Callable[[], None] = proxy._pyroRelease  # noqa: SLF001 - as above
            return echo, release

        def one_round() -> dict[str, object]:
            figures, cdfs = sweep("pyro", open_caller, config.warmup, config.duration)
            return {"figures": figures, "cdfs": cdfs}

        send_result(conn, "ready", {})
        serve_rounds(conn, one_round, limit)
        send_result(conn, "result", {"rss_mib": peak_rss_mib()})

    run_child(conn, body)
