"""Real redis-server, Sentinel and etcd processes for the integration tests, on free loopback ports.

They listen on 127.0.0.1, or on another address (``::1``) when asked.

Each process runs in its own temporary directory with persistence off, is
ready once it answers PING, and is killed after the test. A server may speak
TLS only (``port 0``, ``tls-port``), with certificates made by the test
(`make_tls_files`), and have an ACL user with the ``default`` user disabled. Without a
``redis-server`` on PATH the tests that need one skip, except under CI
(``CI=true``), where they fail: ``make test`` installs the Debian package.
The same holds for ``etcd`` (`etcd_server`, and `etcd_cluster` of three
members for the fail-over tests; see `tests.etcd_process`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import ipaddress
import itertools
import os
import secrets
import shutil
import subprocess
import time
from typing import TYPE_CHECKING, NoReturn

import pytest
import redis
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests import etcd_process
from tests.helpers import free_port, kill_process, stop_process, wait_until

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping, Sequence
    from pathlib import Path

START_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0
MASTER_NAME = "mymaster"


def skip_unless_ci(message: str) -> NoReturn:
    """Skip the test for a missing part of the machine, or fail it under CI (``CI=true``)."""
    if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
        pytest.fail(message)
    pytest.skip(message)


def redis_server_binary() -> str:
    """The path of redis-server; skip the test (fail it under CI) when there is none."""
    path = shutil.which("redis-server")
    if path is None:
        skip_unless_ci(
            "redis-server is not on PATH: install it with `make services` "
            "(apt-get install redis-server) to run the Redis matchmaker tests"
        )
    return path


@dataclasses.dataclass(frozen=True)
class TLSFiles:
    """PEM files of one test PKI: its CA, a server's and a client's certificate and key."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)


def _certificate(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None,
    *,
    names: Sequence[str] = (),
) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    issuer_name, issuer_key = issuer if issuer is not None else (name, key)
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), critical=True)
        # What RFC 5280 asks for, and so Python 3.13's default (strict) checks.
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        )
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=issuer is None,
                crl_sign=issuer is None,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    )
    if issuer is not None:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
    if names:
        alternatives: list[x509.GeneralName] = []
        for item in names:
            try:
                alternatives.append(x509.IPAddress(ipaddress.ip_address(item)))
            except ValueError:
                alternatives.append(x509.DNSName(item))
        builder = builder.add_extension(x509.SubjectAlternativeName(alternatives), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def make_tls_files(
    directory: Path, *, server_names: Sequence[str] = ("127.0.0.1", "::1", "localhost")
) -> TLSFiles:
    """Make a new CA in ``directory`` and a server and a client certificate it signed.

    The server's certificate is valid for ``server_names`` (IP addresses or
    host names). Each call makes an unrelated CA: one made for another test
    plays an attacker's.
    """
    directory.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _certificate(f"zmqactors test CA {secrets.token_hex(4)}", ca_key, None)
    files = TLSFiles(
        *(
            directory / f"{name}.pem"
            for name in ("ca", "server", "server-key", "client", "client-key")
        )
    )
    files.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    for cert_path, key_path, subject, names in (
        (files.server_cert, files.server_key, "redis", server_names),
        (files.client_cert, files.client_key, "zmqactors client", ()),
    ):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _certificate(subject, key, (ca.subject, ca_key), names=names)
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        _write_key(key_path, key)
    return files


class RedisProcess:
    """One redis-server (or sentinel) process; `start` again after `kill` reuses the port."""

    def __init__(
        self,
        directory: Path,
        port: int,
        *,
        sentinel_conf: str | None = None,
        host: str = "127.0.0.1",
        prefix: tuple[str, ...] = (),
        tls: TLSFiles | None = None,
        acl_user: tuple[str, str] | None = None,
    ) -> None:
        self.directory = directory
        self.host = host
        # With TLS the server listens on `port` with TLS only (plain port 0).
        self.tls = tls
        # (name, password) of the one ACL user; the default user is then disabled.
        self.acl_user = acl_user
        self.username = None if acl_user is None else acl_user[0]
        # Runs the process elsewhere, e.g. ("ip", "netns", "exec", NS).
        self.prefix = prefix
        self.port = port
        self.password: str | None = None if acl_user is None else acl_user[1]
        self._sentinel_conf = sentinel_conf
        self._extra: tuple[str, ...] = ()
        self.proc: subprocess.Popen[bytes] | None = None
        directory.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        """``zmq+redis://`` (``zmq+rediss://``) URL of database 0 with the user and password."""
        auth = f"{self.username or ''}:{self.password}@" if self.password else ""
        scheme = "zmq+rediss" if self.tls else "zmq+redis"
        return f"{scheme}://{auth}{self.host_port}/0"

    @property
    def host_port(self) -> str:
        """``HOST:PORT``, an IPv6 host in brackets."""
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def log(self) -> str:
        """The server's log so far, for failure messages."""
        path = self.directory / "redis.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def client(self) -> redis.Redis:
        """A plain redis-py client of this server with short timeouts."""
        tls: dict[str, object] = {}
        if self.tls is not None:
            # With the client certificate: ready also under `--tls-auth-clients yes`;
            # the CA is checked, not the name (a test may give the server another's).
            tls = {
                "ssl": True,
                "ssl_check_hostname": False,
                "ssl_ca_certs": str(self.tls.ca),
                "ssl_certfile": str(self.tls.client_cert),
                "ssl_keyfile": str(self.tls.client_key),
            }
        return redis.Redis(
            host=self.host,
            port=self.port,
            username=self.username,
            password=self.password,
            socket_timeout=1.0,
            socket_connect_timeout=1.0,
            **tls,
        )

    def start(self, *extra: str) -> RedisProcess:
        """Start the process and wait until it answers PING; fail the test otherwise."""
        binary = redis_server_binary()
        if extra:
            self._extra = extra
        if "--requirepass" in self._extra:
            self.password = self._extra[self._extra.index("--requirepass") + 1]
        args = [*self.prefix, binary]
        if self._sentinel_conf is not None:
            # Sentinel rewrites its configuration file: give it its own copy.
            conf = self.directory / "sentinel.conf"
            conf.write_text(self._sentinel_conf)
            args += [str(conf), "--sentinel"]
        else:
            args += ["--save", "", "--appendonly", "no"]
        args += self._listen_args()
        args += [
            "--bind",
            self.host,
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

    def _listen_args(self) -> list[str]:
        args = ["--port", str(self.port)]
        if self.tls is not None:
            args = ["--port", "0", "--tls-port", str(self.port)]
            args += ["--tls-cert-file", str(self.tls.server_cert)]
            args += ["--tls-key-file", str(self.tls.server_key)]
            args += ["--tls-ca-cert-file", str(self.tls.ca)]
            # Client certificates are checked when sent; `--tls-auth-clients yes` requires them.
            args += ["--tls-auth-clients", "optional"]
        if self.acl_user is not None:
            name, password = self.acl_user
            args += ["--user", name, "on", f">{password}", "~*", "&*", "+@all"]
            args += ["--user", "default", "off"]
        return args

    def _wait_ready(self) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + START_TIMEOUT
        client = self.client()
        try:
            while True:
                if self.proc.poll() is not None:
                    pytest.fail(f"redis-server exited with {self.proc.returncode}:\n{self.log}")
                if self._answers_ping(client):
                    return
                if time.monotonic() > deadline:
                    pytest.fail(f"redis-server not answering PING in {START_TIMEOUT}s:\n{self.log}")
                time.sleep(0.02)
        finally:
            client.close()

    def _answers_ping(self, client: redis.Redis) -> bool:
        if self.prefix:
            # In another network namespace: only a process there reaches it.
            reply = subprocess.run(
                [*self.prefix, "redis-cli", "-h", self.host, "-p", str(self.port), "ping"],
                capture_output=True,
                text=True,
                timeout=START_TIMEOUT,
                check=False,
            )
            return reply.stdout.strip() == "PONG"
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False

    def kill(self) -> None:
        """SIGKILL the process (a crash: nothing is saved or closed cleanly) and reap it."""
        kill_process(self.proc, STOP_TIMEOUT)

    def stop(self) -> None:
        """SIGTERM, SIGKILL if it takes longer than 5 s; reap it."""
        stop_process(self.proc, STOP_TIMEOUT)


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
        return f"zmq+sentinel://{self.sentinel.host_port}/{MASTER_NAME}"

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


def start_sentinel(
    directory: Path,
    master: RedisProcess,
    *,
    replicas: int = 0,
    acl_user: tuple[str, str] | None = None,
) -> RedisProcess:
    """Start a sentinel monitoring ``master``; return once it names it and knows its replicas.

    With a TLS ``master`` the sentinel speaks TLS only too (to the master and
    to its clients), and logs in to the master as the master's ACL user;
    ``acl_user`` is then the sentinel's own user (``default`` disabled).
    """
    lines = [
        f"sentinel monitor {MASTER_NAME} {master.host} {master.port} 1",
        # No failover unless a test asks for one: a slow CI machine must
        # not make the sentinel think the master is down.
        f"sentinel down-after-milliseconds {MASTER_NAME} 60000",
    ]
    if master.acl_user is not None:
        lines += [
            f"sentinel auth-user {MASTER_NAME} {master.acl_user[0]}",
            f'sentinel auth-pass {MASTER_NAME} "{master.acl_user[1]}"',
        ]
    if master.tls is not None:
        lines.append("tls-replication yes")
    conf = "\n".join([*lines, ""])
    sentinel = RedisProcess(
        directory,
        free_port(master.host),
        sentinel_conf=conf,
        host=master.host,
        tls=master.tls,
        acl_user=acl_user,
    )
    sentinel.start()
    client = sentinel.client()
    try:
        # Replies are not decoded: the host comes back as bytes.
        wait_for(
            lambda: (
                client.sentinel_get_master_addr_by_name(MASTER_NAME)
                == (master.host.encode(), master.port)
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
    """Start redis-servers on free ports (extra arguments go to redis-server); stop them after.

    ``host`` (default 127.0.0.1) is the address it listens on; ``prefix``
    and ``port`` run it elsewhere (``ip netns exec NS``), where no free port
    can be asked for from here. ``tls`` makes it speak TLS only, with those
    files; ``acl_user`` (name, password) adds that user and disables ``default``.
    """
    started: list[RedisProcess] = []

    def start(
        *extra: str,
        host: str = "127.0.0.1",
        prefix: tuple[str, ...] = (),
        port: int = 0,
        tls: TLSFiles | None = None,
        acl_user: tuple[str, str] | None = None,
    ) -> RedisProcess:
        directory = tmp_path / f"redis-{len(started)}"
        process = RedisProcess(
            directory,
            port or free_port(host),
            host=host,
            prefix=prefix,
            tls=tls,
            acl_user=acl_user,
        )
        started.append(process)
        return process.start(*extra)

    yield start
    for process in started:
        process.stop()


@pytest.fixture
def make_pki(tmp_path: Path) -> Callable[..., TLSFiles]:
    """Make test PKIs with `make_tls_files` under this test's directory; each call a new CA."""
    made = itertools.count()
    return lambda **names: make_tls_files(tmp_path / f"pki-{next(made)}", **names)


@pytest.fixture
def redis_server(start_redis: Callable[..., RedisProcess], loopback: str) -> RedisProcess:
    """A fresh redis-server for this test, listening on `loopback`."""
    return start_redis(host=loopback)


@pytest.fixture
def redis_sentinel(
    tmp_path: Path, start_redis: Callable[..., RedisProcess], loopback: str
) -> Iterator[SentinelSetup]:
    """A master and a sentinel that knows it, both on `loopback`; stopped after the test."""
    master = start_redis(host=loopback)
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


# --- etcd ------------------------------------------------------------------------------


def _etcd_or_skip(start: Callable[[], object]) -> object:
    try:
        return start()
    except etcd_process.EtcdMissing as exc:
        skip_unless_ci(str(exc))
    except RuntimeError as exc:
        pytest.fail(str(exc))


@pytest.fixture
def etcd_server(tmp_path: Path) -> Iterator[etcd_process.EtcdProcess]:
    """A fresh one-member etcd on free ports for this test; killed after it."""
    member = _etcd_or_skip(lambda: etcd_process.start_member(tmp_path / "etcd"))
    assert isinstance(member, etcd_process.EtcdProcess)
    yield member
    member.stop()


@pytest.fixture
def start_etcd(tmp_path: Path) -> Iterator[Callable[..., etcd_process.EtcdProcess]]:
    """Start one-member etcds on free ports; all killed after the test.

    ``tls`` (a `make_pki` PKI) serves HTTPS only, client certificates
    required; ``extra`` are more etcd flags.
    """
    started: list[etcd_process.EtcdProcess] = []

    def start(tls: TLSFiles | None = None, extra: tuple[str, ...] = ()) -> etcd_process.EtcdProcess:
        directory = tmp_path / f"etcd-{len(started)}"
        member = _etcd_or_skip(lambda: etcd_process.start_member(directory, tls, extra))
        assert isinstance(member, etcd_process.EtcdProcess)
        started.append(member)
        return member

    yield start
    for member in started:
        member.stop()


@pytest.fixture
def etcd_cluster(tmp_path: Path) -> Iterator[list[etcd_process.EtcdProcess]]:
    """A fresh three-member etcd cluster on free ports; every member killed after the test."""
    members = _etcd_or_skip(lambda: etcd_process.start_cluster(tmp_path / "etcd"))
    assert isinstance(members, list)
    yield members
    for member in members:
        member.stop()


# --- hosts in network namespaces ------------------------------------------------------


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], check=check, capture_output=True, text=True, timeout=10)


@dataclasses.dataclass(frozen=True)
class Hosts:
    """Network namespaces ("hosts") joined by one link, and each one's address on it."""

    namespaces: Mapping[str, str]
    addresses: Mapping[str, str]

    def prefix(self, host: str) -> tuple[str, ...]:
        """The command prefix that runs a process on ``host``."""
        return ("ip", "netns", "exec", self.namespaces[host])

    def ipv4_addresses(self, host: str) -> str:
        """Every IPv4 address ``host`` has (``ip -4 addr``), for checking there is none."""
        return _ip("-n", self.namespaces[host], "-4", "-o", "addr", "show").stdout.strip()


@pytest.fixture
def ipv6_only_hosts() -> Iterator[Hosts]:
    """Hosts "client", "server" and "redis" on one IPv6-only link, with no IPv4 address at all.

    Each is a network namespace with one veth to a bridge in a fourth, "hub"
    namespace, and one address of a random /64 of the unique local addresses
    (RFC 4193), usable at once (``nodad``); loopback is up without
    127.0.0.1 (only ::1). The names
    are unique per run and every namespace (with its links) is deleted after
    the test. Needs root and ``ip netns``: skips without (fails under CI).
    """
    if os.geteuid() != 0:
        skip_unless_ci("network namespaces need root (ip netns add, ip link add type veth)")
    if shutil.which("ip") is None:
        skip_unless_ci("no `ip` command (iproute2) to make network namespaces")
    tag = secrets.token_hex(4)
    hub = f"zqa6-{tag}-hub"
    roles = ("client", "server", "redis")
    namespaces = {role: f"zqa6-{tag}-{role}" for role in roles}
    prefix = "fd{:02x}:{:04x}:{:04x}:{:04x}".format(*(secrets.randbits(n) for n in (8, 16, 16, 16)))
    # In the canonical form (no leading zeros) that servers and Redis print.
    addresses = {
        role: ipaddress.IPv6Address(f"{prefix}::{index + 1}").compressed
        for index, role in enumerate(roles)
    }
    made: list[str] = []
    try:
        for namespace in (hub, *namespaces.values()):
            result = _ip("netns", "add", namespace, check=False)
            if result.returncode != 0:
                skip_unless_ci(f"cannot make a network namespace: {result.stderr.strip()}")
            made.append(namespace)
        _ip("-n", hub, "link", "add", "br0", "type", "bridge")
        _ip("-n", hub, "link", "set", "br0", "up")
        for index, role in enumerate(roles):
            namespace, port = namespaces[role], f"port{index}"
            # Made inside the hub with one end moved: no name meets the root namespace's.
            result = _ip(
                "-n", hub, "link", "add", port, "type", "veth",
                "peer", "name", "eth0", "netns", namespace, check=False,
            )  # fmt: skip
            if result.returncode != 0:
                skip_unless_ci(f"cannot make a veth pair: {result.stderr.strip()}")
            _ip("-n", hub, "link", "set", port, "master", "br0", "up")
            _ip("-n", namespace, "addr", "add", f"{addresses[role]}/64", "dev", "eth0", "nodad")
            _ip("-n", namespace, "link", "set", "eth0", "up")
            # Up for traffic to the host's own address (which the kernel sends
            # through loopback), without 127.0.0.1: no IPv4 anywhere.
            _ip("-n", namespace, "link", "set", "lo", "up")
            _ip("-n", namespace, "addr", "del", "127.0.0.1/8", "dev", "lo")
        yield Hosts(namespaces, addresses)
    finally:
        # Deleting a namespace deletes its links; a veth goes with either end.
        for namespace in reversed(made):
            _ip("netns", "del", namespace, check=False)
