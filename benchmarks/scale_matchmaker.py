"""The scale benchmark's matchmaker: counting its commands, and a private redis-server (--redis)."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from typing import TYPE_CHECKING, Any, Final

from benchmarks.common import BenchError
from zmqactors.matchmaker import matchmaker_for

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping
    from pathlib import Path

    from zmqactors.options import Settings

# Transport counters (if the library keeps any) that count matchmaker commands.
MATCHMAKER_COUNTERS: Final = ("matchmaker_", "registrations", "refreshes", "lookups")
# Seconds a private redis-server may take to answer PING, and to exit.
REDIS_START, REDIS_STOP = 10.0, 5.0


class CommandCounter:
    """Counts the matchmaker's commands over a window: Redis's own count, or none."""

    def __init__(self, settings: Settings) -> None:
        kind = settings.matchmaker.kind
        self._backend = matchmaker_for(settings) if kind in {"redis", "sentinel"} else None
        self._client = getattr(self._backend, "client", None)

    @property
    def counted(self) -> bool:
        """Whether the backend counts its commands (Redis: ``INFO commandstats``)."""
        return self._client is not None

    def commands(self) -> dict[str, int]:
        """Commands the backend has served so far, by command (empty if it does not count)."""
        if self._client is None:
            return {}
        stats: Mapping[str, Mapping[str, Any]] = self._client.info("commandstats")
        return {name.removeprefix("cmdstat_"): int(entry["calls"]) for name, entry in stats.items()}

    def close(self) -> None:
        """Release the backend."""
        if self._backend is not None:
            self._backend.close()


def command_delta(before: Mapping[str, int], after: Mapping[str, int]) -> dict[str, int]:
    """Commands served between two `CommandCounter.commands` readings, by command.

    The reading's own ``INFO`` is left out.
    """
    delta = {name: count - before.get(name, 0) for name, count in after.items()}
    return {name: count for name, count in delta.items() if count > 0 and name != "info"}


def implied_matchmaker(run: dict[str, Any], settings: Settings, clients: int) -> None:
    """Fill in matchmaker commands/s where nothing counted them: counters, else the options."""
    figures = run["figures"]
    if "matchmaker_per_s" in figures or "start_s" not in figures:
        return
    stats = [*run.get("client_stats", []), *run.get("server_stats", [])]
    counted = sum(
        count
        for counters in stats
        for name, count in counters.items()
        if name.startswith(MATCHMAKER_COUNTERS)
    )
    if counted and run.get("seconds"):
        figures["matchmaker_per_s"] = counted / run["seconds"]
        run["matchmaker_source"] = "the transports' matchmaker counters"
        return
    refreshes = run["servers"] * 3 / settings.matchmaker_ttl
    lookups = clients / settings.lookup_cache_ttl if settings.lookup_cache_ttl else 0.0
    figures["matchmaker_per_s"] = refreshes + lookups
    run["matchmaker_source"] = (
        f"implied: N refreshes every matchmaker_ttl/3 ({settings.matchmaker_ttl:g} s) "
        f"+ a lookup per client every lookup_cache_ttl ({settings.lookup_cache_ttl:g} s)"
    )


@contextlib.contextmanager
def private_redis(directory: Path) -> Iterator[str]:
    """Run a redis-server of our own on a free loopback port; yield its ``zmq+redis://`` URL.

    No persistence, no password (loopback only, gone with the run); it is
    terminated (then killed) on exit. Raises `BenchError` when there is no
    redis-server or redis-py, or when it does not answer PING in time.
    """
    binary = shutil.which("redis-server")
    if binary is None:
        raise BenchError("--redis needs redis-server on PATH (make services)")
    try:
        import redis  # noqa: PLC0415 - optional (the redis extra), only for --redis
    except ImportError:
        raise BenchError("--redis needs redis-py: pip install 'zmqactors[redis]'") from None
    with socket.socket() as probe:
        # redis-server cannot be told to pick a port (0 turns TCP off): the
        # kernel picks one here; the small race with other processes is accepted.
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    directory.mkdir(parents=True, exist_ok=True)
    command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    command += ["--appendonly", "no", "--dir", str(directory), "--logfile", "redis.log"]
    process = subprocess.Popen(  # noqa: S603 - our own arguments, no shell
        command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL
    )
    try:
        client = redis.Redis(port=port, socket_timeout=1.0, socket_connect_timeout=1.0)
        deadline = time.monotonic() + REDIS_START
        while True:
            with contextlib.suppress(redis.RedisError):
                if client.ping():
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                msg = f"redis-server on port {port} did not answer PING (see {directory}/redis.log)"
                raise BenchError(msg)
            time.sleep(0.02)
        client.close()
        yield f"zmq+redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        try:
            process.wait(REDIS_STOP)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(REDIS_STOP)
