"""The zmqactors client process: every zmqactors figure, ``repeat`` times."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import zmqactors as za
from benchmarks.calls import za_async_calls, za_sync_calls
from benchmarks.common import (
    CALL_TIMEOUT,
    CURVE_TOPIC,
    FANOUT_SERVERS,
    NOTIFY_ONE_TOPIC,
    NOTIFY_POOL_TOPIC,
    POOL_LISTENERS,
    PUBLISHER,
    SINK_TOPIC,
    TOPIC,
    BenchConfig,
    make_payload,
    peak_rss_mib,
    sink_name,
    with_cpu,
)
from benchmarks.notify import za_notifications
from benchmarks.processes import run_child, send_result, serve_rounds
from benchmarks.sweep import close_nothing, sweep
from benchmarks.throughput import za_casts, za_fanout

if TYPE_CHECKING:
    from collections.abc import Callable
    from multiprocessing.connection import Connection


def za_client_main(
    conn: Connection, config: BenchConfig, url: str, server_pid: int, limit: float
) -> None:
    """Client process for zmqactors: every zmqactors figure, once per ``"round"`` asked.

    ``server_pid`` is the server process's id (its CPU per call is read from
    outside). Sends ``("ready", {})``, then ``("round", {"figures": ...,
    "cdfs": ...})`` per round and, once stopped, ``("result", {"rss_mib":
    ..., "server_rss_mib": ..., "transport_stats": {process: counters}})``;
    the server's RSS and every process's transport counters are asked over
    RPC at the end.
    """

    def body() -> None:
        payload = make_payload()
        warmup, duration = config.warmup, config.duration
        with (
            za.Transport.from_url(url) as transport,
            za.Transport.from_url(config.curve_url(url, "client")) as curve_transport,
        ):
            client = za.RPCClient(transport, za.Target(topic=TOPIC), timeout=CALL_TIMEOUT)
            curve_client = za.RPCClient(
                curve_transport, za.Target(topic=CURVE_TOPIC), timeout=CALL_TIMEOUT
            )
            sink_clients = [
                za.RPCClient(
                    transport,
                    za.Target(topic=SINK_TOPIC, server=sink_name(i)),
                    timeout=CALL_TIMEOUT,
                )
                for i in range(FANOUT_SERVERS)
            ]
            fanout = za.RPCClient(
                transport, za.Target(topic=SINK_TOPIC), timeout=CALL_TIMEOUT
            ).prepare(fanout=True)
            notify_one = za.Notifier(transport, PUBLISHER, topics=(NOTIFY_ONE_TOPIC,))
            notify_pool = za.Notifier(transport, PUBLISHER, topics=(NOTIFY_POOL_TOPIC,))
            pool_clients = sink_clients[:POOL_LISTENERS]
            echo = functools.partial(client.call, "echo", data=payload)

            def open_caller() -> tuple[Callable[[], object], Callable[[], None]]:
                # Every caller thread shares the one client (and its transport).
                return echo, close_nothing

            def one_round() -> dict[str, object]:
                figures, cdfs = sweep("za", open_caller, warmup, duration)
                za_async_calls(client, payload, warmup)
                pipelined = with_cpu(
                    functools.partial(za_async_calls, client, payload, duration), server_pid
                )
                figures["za_async_rate"] = pipelined["rate"]
                figures["za_async_client_cpu_us"] = pipelined["client_cpu_us"]
                figures["za_async_server_cpu_us"] = pipelined["server_cpu_us"]
                za_sync_calls(curve_client, payload, warmup)
                figures["za_curve_sync_rate"] = za_sync_calls(curve_client, payload, duration)[
                    "rate"
                ]
                za_async_calls(curve_client, payload, warmup)
                figures["za_curve_async_rate"] = za_async_calls(curve_client, payload, duration)
                za_casts(client, payload, warmup)
                casts = za_casts(client, payload, duration)
                figures["za_cast_rate"] = casts["rate"]
                figures["za_cast_lost"] = casts["sent"] - casts["delivered"]
                za_fanout(fanout, sink_clients, payload, warmup)
                fan = za_fanout(fanout, sink_clients, payload, duration)
                figures["za_fanout_rate"] = fan["rate"]
                figures["za_fanout_total_rate"] = fan["total_rate"]
                figures["za_fanout_lost"] = fan["sent"] - fan["delivered"]
                za_notifications(notify_one, sink_clients[:1], payload, warmup)
                one = za_notifications(notify_one, sink_clients[:1], payload, duration)
                figures["za_notify_one_rate"] = one["rate"]
                figures["za_notify_one_lost"] = one["sent"] - one["delivered"]
                za_notifications(notify_pool, pool_clients, payload, warmup)
                pooled = za_notifications(notify_pool, pool_clients, payload, duration)
                figures["za_notify_pool_rate"] = pooled["rate"]
                figures["za_notify_pool_lost"] = pooled["sent"] - pooled["delivered"]
                figures["za_notify_pool_smallest_share"] = pooled["smallest_share"]
                return {"figures": figures, "cdfs": cdfs}

            send_result(conn, "ready", {})
            serve_rounds(conn, one_round, limit)
            server_rss = float(client.call("rss_mib"))
            stats = {
                "client": dict(transport.stats.snapshot()),
                "curve_client": dict(curve_transport.stats.snapshot()),
                "server": client.call("transport_stats"),
            }
            for i, sink in enumerate(sink_clients):
                stats[sink_name(i)] = sink.call("transport_stats")
        send_result(
            conn,
            "result",
            {"rss_mib": peak_rss_mib(), "server_rss_mib": server_rss, "transport_stats": stats},
        )

    run_child(conn, body)
