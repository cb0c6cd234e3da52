"""``make bench-oslo``: oslo.messaging's own simulator on zmqactors and on RabbitMQ, side by side.

    python benchmarks/bench_oslo.py [--duration 10] [--threads 10] [--only zmq|rabbit]

Runs oslo.messaging's ``tools/simulator.py`` (from the sdist of the installed
oslo.messaging release, downloaded with pip into a cache directory on first
use; its code is not part of zmqactors) for rpc call, cast and notify, with
the threading executor and ``--threads`` client threads, against (a)
``zmq+file://`` (zmqactors) and (b) ``rabbit://`` on a local RabbitMQ that
this script starts bound to loopback and stops afterwards (Debian's
``rabbitmq-server``, installed with apt-get when missing and run as root).

The simulator is run through this script (``--simulate``), which makes it
measure real threads: ``eventlet`` is kept out of the process (the simulator's
``eventlet.monkey_patch()`` does nothing, its ``GreenPool`` becomes plain
threads, its bare ``eventlet.sleep()`` after each message does nothing,
oslo.service uses its threading backend), servers asked for the eventlet
executor get the threading one, and the simulator's statistics timers
become daemon threads so a server can exit. Rates are computed here from the
time of each message (first to last), not from the simulator's per-second
buckets. Call: replies per second at the clients and round-trip latency;
cast and notify: messages per second received by the server, and client to
server latency.

Longer than 400 lines on purpose: a stand-alone script (``make
bench-oslo``) that starts RabbitMQ, drives oslo.messaging's simulator on
both drivers and reports; one file so that it runs on its own.
"""

# ruff: noqa: S603 - runs the simulator, pip, apt-get and RabbitMQ's tools: nothing untrusted

from __future__ import annotations

import argparse
import atexit
import collections
import contextlib
import importlib.machinery
import importlib.metadata
import importlib.util
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import types
import uuid
from pathlib import Path
from typing import Any

MODES = ("call", "cast", "notify")
GOAL = 10.0  # issue #14: zmqactors' msg/s over RabbitMQ's, for each mode
_SETTLE = 2.0  # seconds without new messages at the server: it has drained


# -- the simulator, run on real threads (child processes) ---------------------------------


class _ThreadPool:
    """What the simulator uses of ``eventlet.GreenPool``, on plain threads."""

    def __init__(self, size: int = 1000) -> None:
        del size
        self._threads: list[threading.Thread] = []

    def spawn_n(self, func: Any, *args: Any, **kwargs: Any) -> None:
        thread = threading.Thread(target=func, args=args, kwargs=kwargs, daemon=True)
        thread.start()
        self._threads.append(thread)

    def waitall(self) -> None:
        for thread in self._threads:
            thread.join()


def _sleep(seconds: float = 0) -> None:
    """``eventlet.sleep`` on OS threads: a real sleep, or nothing for a bare yield."""
    if seconds:
        time.sleep(seconds)


def _eventlet_stand_in() -> types.ModuleType:
    module = types.ModuleType("eventlet", "bench_oslo stand-in: no monkey patching, real threads")
    module.__path__ = []
    module.__spec__ = importlib.machinery.ModuleSpec("eventlet", None, is_package=True)
    module.monkey_patch = lambda *_a, **_k: None  # type: ignore[attr-defined]
    module.GreenPool = _ThreadPool  # type: ignore[attr-defined]
    # eventlet.sleep() with no delay only lets other green threads run; OS
    # threads are preempted anyway, and time.sleep(0) would make each client
    # thread give up the GIL after every message and queue to get it back
    # (measured: a third of the call rate, on either driver).
    module.sleep = _sleep  # type: ignore[attr-defined]
    return module


class _DaemonTimer(threading.Timer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.daemon = True


class _Recorder:
    """The time and latency of every message the simulator's collectors see."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.samples: dict[str, list[tuple[float, float]]] = collections.defaultdict(list)
        self.lock = threading.Lock()

    def push(self, label: str, message: Any) -> None:
        now = time.time()
        if label.startswith("round-trip"):
            kind, latency = "round_trip", message.return_ts - message.client_ts
        elif label == "server":
            kind, latency = "server", message.server_ts - message.client_ts
        elif label.startswith("error"):
            kind, latency = "error", 0.0
        else:
            kind, latency = "sent", 0.0
        self.samples[kind].append((now, latency))

    def dump(self) -> None:
        summary = {kind: _summarise(list(samples)) for kind, samples in self.samples.items()}
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(summary))
        tmp.replace(self.path)

    def dump_every_second(self) -> None:
        while True:
            time.sleep(1.0)
            with contextlib.suppress(Exception):
                self.dump()


def _summarise(samples: list[tuple[float, float]]) -> dict[str, float]:
    if not samples:
        return {"count": 0}
    times = [t for t, _ in samples]
    latencies = sorted(latency for _, latency in samples)
    span = max(times) - min(times)
    return {
        "count": len(samples),
        "first": min(times),
        "last": max(times),
        "rate": (len(samples) - 1) / span if span > 0 else 0.0,
        "latency_ms": statistics.fmean(latencies) * 1000,
        "p50_ms": latencies[len(latencies) // 2] * 1000,
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
    }


def simulate(tools: Path, stats: Path, argv: list[str]) -> None:
    """Run the simulator's ``main()`` with ``argv``, on threads; write what it saw to ``stats``."""
    sys.modules["eventlet"] = None  # type: ignore[assignment] # absent for oslo's libraries
    from oslo_service import backend  # noqa: PLC0415

    backend.init_backend(backend.BackendType.THREADING)
    from oslo_messaging import server as oslo_server  # noqa: PLC0415

    original = oslo_server.MessageHandlingServer.__init__

    def threading_executor(
        self: Any, transport: Any, dispatcher: Any, executor: Any = None
    ) -> None:
        original(self, transport, dispatcher, "threading" if executor == "eventlet" else executor)

    oslo_server.MessageHandlingServer.__init__ = threading_executor
    threading.Timer = _DaemonTimer  # type: ignore[misc]
    sys.modules["eventlet"] = _eventlet_stand_in()
    spec = importlib.util.spec_from_file_location("oslo_simulator", tools / "simulator.py")
    if spec is None or spec.loader is None:
        msg = f"cannot load {tools / 'simulator.py'}"
        raise RuntimeError(msg)
    sim = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sim)

    recorder = _Recorder(stats)
    original_push = sim.MessageStatsCollector.push

    def push(self: Any, message: Any) -> None:
        recorder.push(self.label, message)
        original_push(self, message)

    sim.MessageStatsCollector.push = push
    atexit.register(recorder.dump)
    threading.Thread(target=recorder.dump_every_second, daemon=True).start()
    sim.CURRENT_PID = os.getpid()
    sim.CURRENT_HOST = socket.gethostname()
    sys.argv = ["simulator.py", *argv]
    sim.main()


# -- getting the simulator ---------------------------------------------------------------


def fetch_simulator(cache: Path) -> Path:
    """The ``tools`` directory of the installed oslo.messaging's sdist (downloaded once)."""
    version = importlib.metadata.version("oslo.messaging")
    tools = cache / f"oslo.messaging-{version}" / "tools"
    wanted = ("simulator.py", "messages_length.yaml")
    if all((tools / name).is_file() for name in wanted):
        return tools
    print(f"downloading the oslo.messaging {version} sdist for tools/simulator.py ...", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [
                *(sys.executable, "-m", "pip", "download", "-q", "--no-deps"),
                *("--no-binary", ":all:", f"oslo.messaging=={version}", "-d", tmp),
            ],
            check=True,
        )
        sdist = next(Path(tmp).glob("oslo*messaging-*.tar.gz"))
        tools.mkdir(parents=True, exist_ok=True)
        with tarfile.open(sdist) as tar:
            for member in tar.getmembers():
                parts = Path(member.name).parts
                if len(parts) == 3 and parts[1] == "tools" and parts[2] in wanted:
                    source = tar.extractfile(member)
                    if source is not None:
                        (tools / parts[2]).write_bytes(source.read())
    return tools


# -- RabbitMQ ------------------------------------------------------------------------------


def _tool(name: str) -> str:
    """The full path of command ``name`` (``name`` itself if it is not on PATH: the run fails)."""
    return shutil.which(name) or name


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


# The broker, its Erlang distribution port and epmd listen on loopback only.
_RABBIT_ENV = dict(
    os.environ,
    RABBITMQ_NODE_IP_ADDRESS="127.0.0.1",
    ERL_EPMD_ADDRESS="127.0.0.1",
    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}",
)


class Rabbit:
    """A local RabbitMQ bound to loopback, started here and stopped afterwards."""

    URL = "rabbit://guest:guest@127.0.0.1:5672/"

    def __init__(self) -> None:
        self.started = False
        self._epmd_was_running = False

    def start(self) -> str:
        """Start the broker; return why it cannot be measured, or ""."""
        if shutil.which("rabbitmq-server") is None:
            if os.geteuid() != 0 or shutil.which("apt-get") is None:
                return "rabbitmq-server is not installed (apt-get install rabbitmq-server)"
            print("installing rabbitmq-server with apt-get ...", flush=True)
            env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
            subprocess.run([_tool("apt-get"), "update", "-qq"], check=False, env=env)
            subprocess.run(
                [_tool("apt-get"), "install", "-y", "-qq", "rabbitmq-server"],
                check=True,
                env=env,
                stdout=subprocess.DEVNULL,
            )
            # Debian's package may start the service: this script starts its own.
            subprocess.run(
                [_tool("rabbitmqctl"), "stop"], check=False, capture_output=True, env=_RABBIT_ENV
            )
        if _port_open(5672):
            return "something already listens on 127.0.0.1:5672; stop it first"
        self._epmd_was_running = _port_open(4369)
        print("starting rabbitmq-server (loopback only) ...", flush=True)
        subprocess.run([_tool("rabbitmq-server"), "-detached"], check=True, env=_RABBIT_ENV)
        self.started = True
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            done = subprocess.run(
                [_tool("rabbitmqctl"), "await_startup", "--timeout", "10"],
                check=False,
                capture_output=True,
                env=_RABBIT_ENV,
            )
            if done.returncode == 0 and _port_open(5672):
                return ""
            time.sleep(1)
        return "rabbitmq-server did not start within 120 s"

    def stop(self) -> None:
        """Stop the broker, wait until its Erlang VM is gone; stop epmd if it was not running."""
        if not self.started:
            return
        self.started = False
        done = subprocess.run(
            [_tool("rabbitmqctl"), "stop"],
            check=False,
            capture_output=True,
            text=True,
            timeout=120,
            env=_RABBIT_ENV,
        )
        if done.returncode != 0:
            print(f"rabbitmqctl stop failed: {done.stdout}{done.stderr}", flush=True)
        # rabbitmqctl returns before the Erlang VM has exited.
        deadline = time.monotonic() + 60
        while _rabbit_vms() and time.monotonic() < deadline:
            time.sleep(0.5)
        if not self._epmd_was_running and shutil.which("epmd"):
            deadline = time.monotonic() + 10
            while _port_open(4369) and time.monotonic() < deadline:
                subprocess.run([_tool("epmd"), "-kill"], check=False, capture_output=True)
                time.sleep(0.2)
        state = "stopped" if not _port_open(5672) else "still running (rabbitmqctl stop)"
        print(f"rabbitmq-server {state}", flush=True)


def _rabbit_vms() -> list[int]:
    """The live (not zombie) Erlang VMs running RabbitMQ on this machine."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if b"beam" in cmdline and b"rabbit" in cmdline and state != "Z":
            found.append(int(proc.name))
    return found


# -- one measurement ------------------------------------------------------------------------


def _child(tools: Path, stats: Path, argv: list[str], log: Path) -> subprocess.Popen[bytes]:
    command = [sys.executable, __file__, "--simulate", str(tools), "--stats", str(stats), "--"]
    with log.open("ab") as out:
        return subprocess.Popen([*command, *argv], stdout=out, stderr=subprocess.STDOUT)


def _read(stats: Path) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads(stats.read_text())
    except (OSError, ValueError):
        return {}
    return data


def measure(
    tools: Path, url: str, mode: str, *, threads: int, duration: int, work: Path
) -> dict[str, Any]:
    """Run one simulator server and client for ``mode``; return the summaries of both."""
    topic, server = f"bench_{uuid.uuid4().hex[:8]}", "bench_server"
    run = work / f"{url.split(':', maxsplit=1)[0]}-{mode}"
    run.mkdir(parents=True, exist_ok=True)
    log = run / "simulator.log"
    server_stats, client_stats = run / "server.json", run / "client.json"
    # The simulator's own options go before the sub-command (-tg takes one or
    # more values: -l ends it), the sub-command's after it.
    if mode == "notify":
        server_argv = ["--url", url, "-tp", topic, "notify-server"]
        client_argv = ["--url", url, "-tp", topic, "-l", str(duration), "notify-client"]
    else:
        server_argv = ["--url", url, "-tp", topic, "-s", server, "rpc-server", "-e", "threading"]
        client_argv = ["--url", url, "-tg", f"{topic}.{server}", "-l", str(duration)]
        client_argv += ["rpc-client", "--timeout", "60"]
        client_argv += ["--is-cast"] if mode == "cast" else []
    client_argv += ["-p", str(threads)]
    server_proc = _child(tools, server_stats, server_argv, log)
    try:
        time.sleep(3.0)  # the server registers (zmq) or declares its queues (RabbitMQ)
        if server_proc.poll() is not None:
            msg = f"the simulator's server exited early; see {log}"
            raise RuntimeError(msg)
        client_proc = _child(tools, client_stats, client_argv, log)
        client_proc.wait(timeout=duration + 120)
        # The server may still be working through a backlog (casts, notifications).
        seen, quiet_since = -1, time.monotonic()
        while time.monotonic() - quiet_since < _SETTLE:
            count = _read(server_stats).get("server", {}).get("count", 0)
            if count != seen:
                seen, quiet_since = count, time.monotonic()
            time.sleep(0.5)
    finally:
        server_proc.send_signal(signal.SIGTERM)
        try:
            server_proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server_proc.kill()
            server_proc.wait(timeout=10)
    return {"server": _read(server_stats), "client": _read(client_stats)}


def headline(mode: str, result: dict[str, Any]) -> dict[str, float]:
    """msg/s, mean and p99 latency (ms), errors: call at the client, cast/notify at the server.

    Also how many messages the clients sent and how many the server received.
    """
    side = (
        result["client"].get("round_trip", {})
        if mode == "call"
        else result["server"].get("server", {})
    )
    return {
        "rate": side.get("rate", 0.0),
        "latency": side.get("latency_ms", float("nan")),
        "p99": side.get("p99_ms", float("nan")),
        "count": side.get("count", 0),
        "errors": result["client"].get("error", {}).get("count", 0),
        "sent": result["client"].get("sent", {}).get("count", 0),
        "received": result["server"].get("server", {}).get("count", 0),
    }


def report(results: dict[str, dict[str, dict[str, float]]], threads: int, duration: int) -> None:
    """Print the side-by-side table."""
    version = importlib.metadata.version("oslo.messaging")
    print()
    print(
        f"oslo.messaging {version} tools/simulator.py, threading executor, {threads} client "
        f"threads, {duration} s per run (call: replies at the clients; cast, notify: received "
        "by the server)"
    )
    header = f"{'':<8}{'zmqactors msg/s':>16}{'latency ms':>18}{'RabbitMQ msg/s':>16}"
    print(header + f"{'latency ms':>18}{'ratio':>8}")
    for mode in MODES:
        zmq, rabbit = results.get("zmq", {}).get(mode), results.get("rabbit", {}).get(mode)
        cells = []
        for side in (zmq, rabbit):
            if side is None:
                cells += [f"{'-':>16}", f"{'-':>18}"]
            else:
                errors = f" ({side['errors']:.0f} err)" if side["errors"] else ""
                cells += [
                    f"{side['rate']:>16,.0f}",
                    f"{side['latency']:>8.2f} p99 {side['p99']:>5.1f}{errors}",
                ]
        ratio = (
            f"{zmq['rate'] / rabbit['rate']:>7.1f}x"
            if zmq and rabbit and rabbit["rate"] > 0
            else f"{'-':>8}"
        )
        print(f"{mode:<8}" + "".join(cells) + ratio)
    print(
        "latency: mean and p99; call: round trip; cast, notify: client to server, mostly time "
        "queued (the clients send as fast as they can)"
    )
    # A rate counts what arrived: say what did not (zmqactors refuses a
    # notification that meets a full backlog, counted, and what is still
    # queued in a client that exits without closing its transport is lost).
    for driver, name in (("zmq", "zmqactors"), ("rabbit", "RabbitMQ")):
        shares = [
            f"{mode} {side['received']:,.0f}/{side['sent']:,.0f}"
            for mode in MODES
            if (side := results.get(driver, {}).get(mode)) and side["sent"]
        ]
        if shares:
            print(f"received by the server / sent by the clients, {name}: " + ", ".join(shares))
    for mode in MODES:
        zmq, rabbit = results.get("zmq", {}).get(mode), results.get("rabbit", {}).get(mode)
        if zmq and rabbit and rabbit["rate"] > 0:
            ratio = zmq["rate"] / rabbit["rate"]
            verdict = "met" if ratio >= GOAL else "NOT met"
            print(f"goal: zmqactors >= {GOAL:g}x RabbitMQ on {mode}: {verdict} ({ratio:.1f}x)")


def main() -> int:
    """Measure both drivers and print the comparison."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per run (default 10)")
    parser.add_argument("--threads", type=int, default=10, help="client threads (default 10)")
    parser.add_argument("--only", choices=("zmq", "rabbit"), help="measure one driver only")
    parser.add_argument("--cache", type=Path, default=None, help="where the sdist's tools go")
    args = parser.parse_args()
    cache_home = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    tools = fetch_simulator(args.cache or cache_home / "zmqactors" / "oslo-simulator")
    results: dict[str, dict[str, dict[str, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="zmqactors-bench-oslo-") as tmp:
        work = Path(tmp)
        drivers = [args.only] if args.only else ["zmq", "rabbit"]
        rabbit = Rabbit()
        try:
            for driver in drivers:
                if driver == "rabbit":
                    why = rabbit.start()
                    if why:
                        print(f"RabbitMQ not measured: {why}", flush=True)
                        continue
                    url = Rabbit.URL
                else:
                    url = f"zmq+file://{work}/matchmaker"
                for mode in MODES:
                    print(f"measuring {driver} {mode} ...", flush=True)
                    result = measure(
                        tools, url, mode, threads=args.threads, duration=args.duration, work=work
                    )
                    results.setdefault(driver, {})[mode] = headline(mode, result)
        finally:
            rabbit.stop()
        report(results, args.threads, args.duration)
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--simulate":
        # python bench_oslo.py --simulate TOOLS --stats FILE -- SIMULATOR ARGS...
        simulate(Path(sys.argv[2]), Path(sys.argv[4]), sys.argv[6:])
    else:
        sys.exit(main())
