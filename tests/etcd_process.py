"""Real etcd members on free loopback ports, for tests and benchmarks.

Each member runs in its own temporary data directory, is ready once it
answers a read on its client port, and is stopped (SIGKILL if SIGTERM is not
enough) by whoever started it. `start_cluster` starts three members of one
cluster for the fail-over tests. Without an ``etcd`` binary on PATH a caller
gets `EtcdMissing` and decides: tests skip (fail under ``CI=true``).
"""

from __future__ import annotations

import json
import shutil
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from typing import TYPE_CHECKING, Any

from tests.helpers import free_port, kill_process, stop_process

if TYPE_CHECKING:
    from pathlib import Path

START_TIMEOUT = 20.0
STOP_TIMEOUT = 5.0
HOST = "127.0.0.1"


class EtcdMissing(RuntimeError):  # noqa: N818 - a condition, not a failure of the code
    """No ``etcd`` on PATH."""


def etcd_binary() -> str:
    """The path of etcd; raises `EtcdMissing` naming the package when there is none."""
    path = shutil.which("etcd")
    if path is None:
        msg = (
            "etcd is not on PATH: install it with `make services` "
            "(apt-get install etcd-server) to run the etcd matchmaker tests"
        )
        raise EtcdMissing(msg)
    return path


class EtcdProcess:
    """One etcd member; `start` again after `kill` keeps its ports and data."""

    def __init__(  # noqa: PLR0917 - one member's whole description
        self,
        directory: Path,
        name: str,
        client_port: int,
        peer_port: int,
        cluster: str,
        tls: Any = None,
        extra: tuple[str, ...] = (),
    ) -> None:
        """``tls``: a test PKI (``TLSFiles``): HTTPS only, client certificates required."""
        self.directory = directory
        self.tls = tls
        # More etcd flags, e.g. ("--auth-token-ttl", "1").
        self.extra = extra
        self.name = name
        self.client_port = client_port
        self.peer_port = peer_port
        # --initial-cluster: every member's name=peer URL.
        self.cluster = cluster
        self.proc: subprocess.Popen[bytes] | None = None
        directory.mkdir(parents=True, exist_ok=True)

    @property
    def host_port(self) -> str:
        """``127.0.0.1:PORT`` of the client port."""
        return f"{HOST}:{self.client_port}"

    @property
    def url(self) -> str:
        """The ``zmq+etcd://`` (``zmq+etcds://``) URL of this member alone."""
        return f"zmq+etcd{'s' if self.tls else ''}://{self.host_port}/test"

    @property
    def log(self) -> str:
        """The member's log so far, for failure messages."""
        path = self.directory / "etcd.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def start(self, *, wait: bool = True) -> EtcdProcess:
        """Start the member; with ``wait``, until it answers (raises `RuntimeError` if not)."""
        client = f"{'https' if self.tls else 'http'}://{HOST}:{self.client_port}"
        peer = f"http://{HOST}:{self.peer_port}"
        args = [
            etcd_binary(),
            "--name",
            self.name,
            "--data-dir",
            str(self.directory / "data"),
            "--listen-client-urls",
            client,
            "--advertise-client-urls",
            client,
            "--listen-peer-urls",
            peer,
            "--initial-advertise-peer-urls",
            peer,
            "--initial-cluster",
            self.cluster,
            "--initial-cluster-state",
            "new",
            "--initial-cluster-token",
            # One token per cluster: the members' peer URLs are unique to it.
            f"test-{abs(hash(self.cluster))}",
            "--logger",
            "zap",
            "--log-outputs",
            str(self.directory / "etcd.log"),
            # Short elections: a killed leader is replaced in about a second.
            "--heartbeat-interval",
            "50",
            "--election-timeout",
            "500",
        ]
        if self.tls is not None:
            args += [
                "--cert-file",
                str(self.tls.server_cert),
                "--key-file",
                str(self.tls.server_key),
            ]
            args += ["--trusted-ca-file", str(self.tls.ca), "--client-cert-auth"]
        args += self.extra
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        if wait:
            self.wait_ready()
        return self

    def answers(self) -> bool:
        """Whether the member serves a read now (it has a leader)."""
        context = None
        if self.tls is not None:
            context = ssl.create_default_context(cafile=str(self.tls.ca))
            context.load_cert_chain(str(self.tls.client_cert), str(self.tls.client_key))
        request = urllib.request.Request(  # noqa: S310 - our own http(s) URL
            f"{'https' if self.tls else 'http'}://{self.host_port}/v3/kv/range",
            data=json.dumps({"key": "AA=="}).encode(),
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=1.0, context=context) as reply:  # noqa: S310
                return bool(reply.status == 200)
        except (OSError, urllib.error.URLError):
            return False

    def wait_ready(self) -> None:
        """Wait until the member answers; raises `RuntimeError` with its log if it does not."""
        assert self.proc is not None
        deadline = time.monotonic() + START_TIMEOUT
        while not self.answers():
            if self.proc.poll() is not None:
                msg = f"etcd {self.name} exited with {self.proc.returncode}:\n{self.log}"
                raise RuntimeError(msg)
            if time.monotonic() > deadline:
                msg = f"etcd {self.name} not answering in {START_TIMEOUT}s:\n{self.log}"
                raise RuntimeError(msg)
            time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL the member (a crash) and reap it."""
        kill_process(self.proc, STOP_TIMEOUT)

    def stop(self) -> None:
        """SIGTERM, SIGKILL if it takes longer than 5 s; reap it."""
        stop_process(self.proc, STOP_TIMEOUT)


def start_member(directory: Path, tls: Any = None, extra: tuple[str, ...] = ()) -> EtcdProcess:
    """One single-member cluster on free ports, answering when this returns.

    ``tls`` (a test PKI): HTTPS only, client certificates required; ``extra``:
    more etcd flags.
    """
    peer_port = free_port(HOST)
    member = EtcdProcess(
        directory, "solo", free_port(HOST), peer_port, f"solo=http://{HOST}:{peer_port}", tls, extra
    )
    return member.start()


def start_cluster(directory: Path, size: int = 3) -> list[EtcdProcess]:
    """``size`` members of one cluster on free ports, all answering when this returns.

    On failure the members already started are stopped before the error propagates.
    """
    ports = [(free_port(HOST), free_port(HOST)) for _ in range(size)]
    cluster = ",".join(f"m{i}=http://{HOST}:{peer}" for i, (_, peer) in enumerate(ports))
    members = [
        EtcdProcess(directory / f"m{i}", f"m{i}", client, peer, cluster)
        for i, (client, peer) in enumerate(ports)
    ]
    try:
        for member in members:
            member.start(wait=False)
        for member in members:
            member.wait_ready()
    except BaseException:
        for member in members:
            member.stop()
        raise
    return members


def cluster_url(members: list[EtcdProcess], prefix: str = "/test") -> str:
    """The ``zmq+etcd://`` URL naming every member of ``members``."""
    return f"zmq+etcd://{','.join(m.host_port for m in members)}{prefix}"
