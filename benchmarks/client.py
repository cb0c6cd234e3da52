"""The zmqactors client process: every zmqactors figure, ``repeat`` times."""

from __future__ import annotations

import collections
from typing import TYPE_CHECKING

import zmqactors as za
from benchmarks.calls import za_async_calls, za_sync_calls, za_threaded_calls
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
)
from benchmarks.notify import za_notifications
from benchmarks.processes import run_child, send_result
from benchmarks.throughput import za_casts, za_fanout

if TYPE_CHECKING:
    from multiprocessing.connection import Connection


def za_client_main(conn: Connection, config: BenchConfig, url: str) -> None:
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
        send_result(
            conn,
            "result",
            {
                "samples": dict(samples),
                "rss_mib": peak_rss_mib(),
                "server_rss_mib": server_rss,
                "transport_stats": stats,
            },
        )

    run_child(conn, body)
