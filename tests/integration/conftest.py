"""Real redis-server and Sentinel processes for the integration tests, on free loopback ports.

Each process runs in its own temporary directory with persistence off, is
ready once it answers PING, and is killed after the test. Without a
``redis-server`` on PATH the tests that need one skip, except under CI
(``CI=true``), where they fail: ``make test`` installs the Debian package.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from typing import TYPE_CHECKING

import pytest
import redis

from tests.helpers import free_port, wait_until

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

START_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0
MASTER_NAME = "mymaster"


def redis_server_binary() -> str:
    """The path of redis-server; skip the test (fail it under CI) when there is none."""
    path = shutil.which("redis-server")
    if path is None:
        message = (
            "redis-server is not on PATH: install it with `make services` "
            "(apt-get install redis-server) to run the Redis matchmaker tests"
        )
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(message)
        pytest.skip(message)
    return path


class RedisProcess:
    """One redis-server (or sentinel) process; `start` again after `kill` reuses the port."""

    def __init__(self, directory: Path, port: int, *, sentinel_conf: str | None = None) -> None:
        self.directory = directory
        self.port = port
        self.password: str | None = None
        self._sentinel_conf = sentinel_conf
        self._extra: tuple[str, ...] = ()
        self.proc: subprocess.Popen[bytes] | None = None
        directory.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        """``zmq+redis://`` URL of database 0 (with the password, if any)."""
        auth = f":{self.password}@" if self.password else ""
        return f"zmq+redis://{auth}127.0.0.1:{self.port}/0"

    @property
    def log(self) -> str:
        """The server's log so far, for failure messages."""
        path = self.directory / "redis.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def client(self) -> redis.Redis:
        """A plain redis-py client of this server with short timeouts."""
        return redis.Redis(
            host="127.0.0.1",
            port=self.port,
            password=self.password,
            socket_timeout=1.0,
            socket_connect_timeout=1.0,
        )

    def start(self, *extra: str) -> RedisProcess:
        """Start the process and wait until it answers PING; fail the test otherwise."""
        binary = redis_server_binary()
        if extra:
            self._extra = extra
        if "--requirepass" in self._extra:
            self.password = self._extra[self._extra.index("--requirepass") + 1]
        args = [binary]
        if self._sentinel_conf is not None:
            # Sentinel rewrites its configuration file: give it its own copy.
            conf = self.directory / "sentinel.conf"
            conf.write_text(self._sentinel_conf)
            args += [str(conf), "--sentinel"]
        else:
            args += ["--save", "", "--appendonly", "no"]
        args += [
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.directory),
            "--daemonize",
            "no",
            "--logfile",
            str(self.directory / "redis.log"),
            *self._extra,
        ]
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + START_TIMEOUT
        client = self.client()
        try:
            while True:
                if self.proc.poll() is not None:
                    pytest.fail(f"redis-server exited with {self.proc.returncode}:\n{self.log}")
                try:
                    if client.ping():
                        return
                except redis.RedisError:
                    pass
                if time.monotonic() > deadline:
                    pytest.fail(f"redis-server not answering PING in {START_TIMEOUT}s:\n{self.log}")
                time.sleep(0.02)
        finally:
            client.close()

    def kill(self) -> None:
        """SIGKILL the process (a crash: nothing is saved or closed cleanly) and reap it."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=STOP_TIMEOUT)

    def stop(self) -> None:
        """SIGTERM, SIGKILL if it takes longer than 5 s; reap it."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.kill()


class SentinelSetup:
    """A master redis-server, maybe a replica, and one sentinel watching them (quorum 1)."""

    def __init__(
        self, master: RedisProcess, sentinel: RedisProcess, replica: RedisProcess | None = None
    ) -> None:
        self.master = master
        self.sentinel = sentinel
        self.replica = replica

    @property
    def url(self) -> str:
        """``zmq+sentinel://`` URL of the master through the sentinel."""
        return f"zmq+sentinel://127.0.0.1:{self.sentinel.port}/{MASTER_NAME}"

    def master_port(self) -> int | None:
        """The port of the master the sentinel names now."""
        client = self.sentinel.client()
        try:
            reply = client.sentinel_get_master_addr_by_name(MASTER_NAME)
        finally:
            client.close()
        return None if reply is None else int(reply[1])

    def failover(self, timeout: float = 20.0) -> None:
        """Make the sentinel promote the replica; return once it names it as master."""
        assert self.replica is not None
        client = self.sentinel.client()
        try:
            client.execute_command("SENTINEL FAILOVER", MASTER_NAME)
        finally:
            client.close()
        deadline = time.monotonic() + timeout
        while self.master_port() != self.replica.port:
            if time.monotonic() > deadline:
                pytest.fail(f"no failover within {timeout}s:\n{self.sentinel.log}")
            time.sleep(0.05)
        self.master, self.replica = self.replica, self.master


def wait_for(predicate: Callable[[], bool], what: str, log: str = "") -> None:
    """Poll ``predicate`` until it holds, or fail after `START_TIMEOUT`."""
    try:
        wait_until(predicate, what, timeout=START_TIMEOUT, interval=0.02)
    except AssertionError as exc:
        pytest.fail(f"{exc}\n{log}")


def start_sentinel(directory: Path, master: RedisProcess, *, replicas: int = 0) -> RedisProcess:
    """Start a sentinel monitoring ``master``; return once it names it and knows its replicas."""
    conf = "\n".join(
        [
            f"sentinel monitor {MASTER_NAME} 127.0.0.1 {master.port} 1",
            # No failover unless a test asks for one: a slow CI machine must
            # not make the sentinel think the master is down.
            f"sentinel down-after-milliseconds {MASTER_NAME} 60000",
            "",
        ]
    )
    sentinel = RedisProcess(directory, free_port(), sentinel_conf=conf)
    sentinel.start()
    client = sentinel.client()
    try:
        # Replies are not decoded: the host comes back as bytes.
        wait_for(
            lambda: (
                client.sentinel_get_master_addr_by_name(MASTER_NAME) == (b"127.0.0.1", master.port)
            ),
            "the sentinel naming the master",
            sentinel.log,
        )
        # It learns of replicas from the master's INFO, fetched when it starts.
        wait_for(
            lambda: len(client.sentinel_slaves(MASTER_NAME)) >= replicas,
            "the sentinel knowing the replica",
            sentinel.log,
        )
    except BaseException:
        sentinel.stop()
        raise
    finally:
        client.close()
    return sentinel


@pytest.fixture
def start_redis(tmp_path: Path) -> Iterator[Callable[..., RedisProcess]]:
    """Start redis-servers on free ports (extra arguments go to redis-server); stop them after."""
    started: list[RedisProcess] = []

    def start(*extra: str) -> RedisProcess:
        process = RedisProcess(tmp_path / f"redis-{len(started)}", free_port())
        started.append(process)
        return process.start(*extra)

    yield start
    for process in started:
        process.stop()


@pytest.fixture
def redis_server(start_redis: Callable[..., RedisProcess]) -> RedisProcess:
    """A fresh redis-server for this test."""
    return start_redis()


@pytest.fixture
def redis_sentinel(
    tmp_path: Path, start_redis: Callable[..., RedisProcess]
) -> Iterator[SentinelSetup]:
    """A master and a sentinel that knows it; stopped after the test."""
    master = start_redis()
    sentinel = start_sentinel(tmp_path / "sentinel", master)
    yield SentinelSetup(master, sentinel)
    sentinel.stop()


@pytest.fixture
def redis_sentinel_with_replica(
    tmp_path: Path, start_redis: Callable[..., RedisProcess]
) -> Iterator[SentinelSetup]:
    """A master, a replica in sync with it, and a sentinel that knows both; stopped after."""
    # Redis waits 5 s by default before a diskless full sync, for more replicas.
    master = start_redis("--repl-diskless-sync-delay", "0")
    replica = start_redis("--replicaof", "127.0.0.1", str(master.port))
    client = replica.client()
    try:
        wait_for(
            lambda: client.info("replication").get("master_link_status") == "up",
            "the replica in sync",
            replica.log,
        )
    finally:
        client.close()
    sentinel = start_sentinel(tmp_path / "sentinel", master, replicas=1)
    yield SentinelSetup(master, sentinel, replica)
    sentinel.stop()
