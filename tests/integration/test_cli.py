"""The ``zmqactors`` command line as a user runs it: in a process of its own, against servers
and listeners in other processes."""

from __future__ import annotations

import concurrent.futures
import json
import os
import re
import selectors
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

import pytest
import structlog

import zmqactors.cli
from zmqactors.matchmaker.file import FileMatchmaker

pytestmark = pytest.mark.integration

TOPIC = "calc"
RUN_TIMEOUT = 60.0
PARALLEL = 4


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("ZMQACTORS_URL", None)
    return env


def cli(*args: str) -> list[str]:
    """The command line of ``zmqactors ARGS...`` with this interpreter."""
    return [sys.executable, "-m", "zmqactors.cli", *args]


def run(
    *args: str, timeout: float = RUN_TIMEOUT, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``zmqactors ARGS...`` to completion (``env``: more environment variables)."""
    return subprocess.run(
        cli(*args),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**_env(), **(env or {})},
    )


def run_all(*commands: list[str]) -> list[subprocess.CompletedProcess[str]]:
    """Run independent ``zmqactors`` command lines, a few at a time; return their results.

    A few, not all at once: on a loaded two-CPU machine fifteen interpreters
    starting together took longer than `RUN_TIMEOUT`.
    """
    with concurrent.futures.ThreadPoolExecutor(max_workers=PARALLEL) as pool:
        return list(pool.map(lambda args: run(*args), commands))


class Output:
    """Lines of one pipe of a running process, read from its descriptor with a deadline.

    A buffered ``readline()`` would hide lines from ``select()`` in its buffer.
    """

    def __init__(self, stream: IO[bytes] | None) -> None:
        assert stream is not None  # started with PIPE
        self.fd = stream.fileno()
        self.lines: list[str] = []
        self._partial = b""

    def until(self, condition, timeout: float = RUN_TIMEOUT) -> list[str]:
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as selector:
            selector.register(self.fd, selectors.EVENT_READ)
            while not condition(self.lines):
                left = deadline - time.monotonic()
                if left <= 0:
                    pytest.fail(f"condition not met in {timeout}s; lines: {self.lines[-5:]}")
                if not selector.select(timeout=left):
                    continue
                chunk = os.read(self.fd, 65536)
                if not chunk:
                    pytest.fail(f"pipe closed before the condition was met: {self.lines[-5:]}")
                self._partial += chunk
                *complete, self._partial = self._partial.split(b"\n")
                self.lines.extend(line.decode() for line in complete)
        return self.lines


@pytest.fixture
def start_cli():
    """Start long-running ``zmqactors`` processes (listen); kill any still running after."""
    started: list[subprocess.Popen[bytes]] = []

    def start(*args: str) -> tuple[subprocess.Popen[bytes], Output, Output]:
        proc = subprocess.Popen(
            cli(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env()
        )
        started.append(proc)
        return proc, Output(proc.stdout), Output(proc.stderr)

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()


def assert_usage_error(result: subprocess.CompletedProcess[str], *expected: str) -> None:
    assert result.returncode == 2, result
    assert "Traceback" not in result.stderr, result.stderr
    for text in expected:
        assert text in result.stderr, result.stderr


# -- call -----------------------------------------------------------------------------


@pytest.mark.both_families
def test_call_prints_the_result_as_json(matchmaker_url, spawn_server):
    spawn_server(TOPIC, "node-1")
    url = ("--url", matchmaker_url)
    results = run_all(
        [*url, "call", TOPIC, "add", "a=1", "b=2"],
        # Values are JSON when they parse, strings otherwise.
        [*url, "call", TOPIC, "echo", 'value={"n": [1, 2.5, true, null]}'],
        [*url, "call", TOPIC, "echo", "value=hello"],
        [*url, "call", TOPIC, "echo", 'value="1"'],
        [*url, "call", TOPIC, "echo", "value=NaN"],
        # --json gives every argument at once; key=value wins over it.
        [*url, "call", TOPIC, "add", "--json", '{"a": 10, "b": 20}', "b=5"],
        # --server, and the transport options after the subcommand.
        ["call", TOPIC, "whoami", "--server", "node-1", *url],
    )
    for result in results:
        assert result.returncode == 0, result
        assert result.stderr == "", result.stderr
    assert [json.loads(r.stdout) for r in results] == [
        3,
        {"n": [1, 2.5, True, None]},
        "hello",
        "1",
        "NaN",
        15,
        "node-1",
    ]


def test_call_failures_exit_1_for_remote_errors_and_3_for_no_responders(
    matchmaker_url, spawn_server, with_query
):
    # A server that sends tracebacks (--verbose shows them; off by default).
    spawn_server(TOPIC, "node-1", url=with_query(matchmaker_url, "send_tracebacks=true"))
    url = ("--url", matchmaker_url)
    remote, verbose, no_method, other_server, nobody, cast_nobody = run_all(
        [*url, "call", TOPIC, "fail", "message=boom"],
        [*url, "--verbose", "call", TOPIC, "fail", "message=boom"],
        [*url, "call", TOPIC, "nonexistent"],
        [*url, "call", TOPIC, "whoami", "--server", "node-9"],
        [*url, "call", "nobody.serves.this", "add", "a=1", "b=2"],
        [*url, "cast", "nobody.serves.this", "record", "value=1"],
    )
    assert remote.returncode == 1
    assert remote.stdout == ""
    assert remote.stderr == "RemoteError: builtins.ValueError: boom\n"
    assert verbose.returncode == 1
    # The server's traceback, not one of the command line.
    assert "RemoteError: builtins.ValueError: boom" in verbose.stderr
    assert "raise ValueError(message)" in verbose.stderr
    assert "zmqactors/cli/" not in verbose.stderr
    assert no_method.returncode == 1
    assert "NoSuchMethod" in no_method.stderr
    for result in (other_server, nobody, cast_nobody):
        assert result.returncode == 3, result
        assert result.stderr.startswith("NoRespondersError: "), result.stderr
        assert "Traceback" not in result.stderr


def test_call_timeout_exits_3_within_the_timeout_plus_a_second(matchmaker_url, spawn_server):
    spawn_server(TOPIC, "node-1")
    url = ("--url", matchmaker_url)
    # What starting the interpreter and the transport costs right now (a
    # call that fails at once), so a loaded machine's start-up is not
    # counted against the timeout.
    started = time.monotonic()
    assert run(*url, "call", "nobody.serves.this", "add").returncode == 3
    baseline = time.monotonic() - started
    started = time.monotonic()
    result = run(*url, "call", TOPIC, "sleep", "seconds=2.5", "--timeout", "1")
    elapsed = time.monotonic() - started
    assert result.returncode == 3, result
    assert result.stderr.startswith("MessagingTimeout: "), result.stderr
    assert elapsed >= 1.0, elapsed
    assert elapsed - baseline < 1.0 + 1.0, (elapsed, baseline)


def test_usage_errors_exit_2_with_one_line_and_no_traceback(matchmaker_url):
    url = ("--url", matchmaker_url)
    results = run_all(
        [*url, "call", TOPIC, "add", "a"],
        [*url, "call", TOPIC, "add", "--json", "{not json"],
        ["--url", "http://example.com", "call", TOPIC, "add"],
        [*url, "call", "no/slashes", "add"],
        [*url, "call", TOPIC, "_private"],
    )
    expected = [
        ("bad argument 'a'", "KEY=VALUE"),
        ("--json is not valid JSON",),
        ("invalid transport URL", "unknown scheme"),
        ("invalid Target topic 'no/slashes'",),
        ("invalid method name '_private'",),
    ]
    for result, texts in zip(results, expected, strict=True):
        assert_usage_error(result, *texts)
        assert result.stdout == "", result
        assert len(result.stderr.splitlines()) == 1, result.stderr


@pytest.fixture
def main_in_process(capsys):
    """Run `zmqactors.cli.main` in this process: (exit code, stdout, stderr).

    For what fails before any socket is opened, where a process per case
    would only add start-up time. main() configures structlog (it is the
    application): the configuration is restored after the test.
    """
    saved = structlog.get_config()

    def invoke(*args: str) -> tuple[object, str, str]:
        try:
            code: object = zmqactors.cli.main(list(args))
        except SystemExit as exc:
            code = exc.code
        out, err = capsys.readouterr()
        return code, out, err

    yield invoke
    structlog.configure(**saved)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["call", TOPIC, "add", "1=2"], "bad argument '1=2'"),
        (["call", TOPIC, "add", "a=1", "a=2"], "'a' is given more than once"),
        (["call", TOPIC, "add", "--json", "[1, 2]"], "--json must be a JSON object"),
        (["call", TOPIC, "add", "--timeout", "-1"], "argument --timeout"),
        (["call", TOPIC, "add", "--no-such-option"], "unrecognized arguments: --no-such-option"),
        (["cast", TOPIC, "m", "--fanout", "--server", "s"], "not allowed with"),
        (["notify", TOPIC, "event", "--payload", "[1]", "a=1"], "--payload to be a JSON object"),
        (["notify", TOPIC, "event", "--priority", "loud"], "invalid choice: 'loud'"),
        (["listen", "bad topic"], "invalid Target topic 'bad topic'"),
        (["listen", TOPIC, "--count", "0"], "argument --count"),
        (["--url", "zmq://?timeout=never", "targets"], "parameter 'timeout' must be a number"),
        (["--config-file", "/nonexistent/zmq.conf", "targets"], "cannot read --config-file"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        ([], "usage: zmqactors"),
    ],
)
def test_more_usage_errors_exit_2(main_in_process, args, expected):
    code, out, err = main_in_process(*args)
    assert code == 2
    assert out == ""
    assert expected in err
    assert "Traceback" not in err


def test_a_bad_option_in_the_config_file_exits_2(main_in_process, tmp_path):
    conf = tmp_path / "zmq.conf"
    conf.write_text("[zmq]\ntimeout = soon\n")
    code, out, err = main_in_process("--config-file", str(conf), "targets")
    assert (code, out) == (2, "")
    assert "option zmq.timeout is invalid" in err


@pytest.mark.parametrize(
    "command", ["call", "cast", "notify", "listen", "targets", "ping", "info", "stats"]
)
def test_help_of_every_subcommand_exits_0(main_in_process, command):
    code, out, _ = main_in_process(command, "--help")
    assert code == 0
    assert f"usage: zmqactors {command}" in out
    for option in ("--url", "--url-file", "--config-file"):
        assert option in out


def test_help_lists_every_subcommand(main_in_process):
    code, out, _ = main_in_process("--help")
    assert code == 0
    for command in (
        "call",
        "cast",
        "notify",
        "listen",
        "targets",
        "ping",
        "info",
        "stats",
        "bench",
    ):
        assert command in out


def test_the_console_script_runs_the_same_command_line():
    script = shutil.which("zmqactors", path=str(Path(sys.executable).parent))
    assert script is not None
    listen, bench = (
        subprocess.run(
            [script, command, "--help"], capture_output=True, text=True, timeout=60, check=False
        )
        for command in ("listen", "bench")
    )
    assert listen.returncode == 0, listen
    assert "usage: zmqactors listen" in listen.stdout
    # The benchmark left the installed package: the command says where it went.
    assert bench.returncode == 2, bench
    assert "make bench" in bench.stderr
    assert "Traceback" not in bench.stderr


# -- cast -----------------------------------------------------------------------------


@pytest.mark.both_families
def test_cast_reaches_one_server_and_fanout_reaches_each(matchmaker_url, spawn_server):
    servers = ["node-1", "node-2"]
    for server in servers:
        spawn_server(TOPIC, server)
    url = ("--url", matchmaker_url)
    one, every = run_all(
        [*url, "cast", TOPIC, "record", "value=1"],
        [*url, "cast", TOPIC, "record", "--fanout", "--json", '{"value": 2}'],
    )
    assert (one.returncode, one.stdout, one.stderr) == (0, "", "")
    assert (every.returncode, every.stdout, every.stderr) == (0, "", "")
    deadline = time.monotonic() + 10
    while True:
        results = run_all(*([*url, "call", TOPIC, "recorded", "--server", s] for s in servers))
        recorded = [json.loads(r.stdout) for r in results]
        got = sorted(v for values in recorded for v in values)
        if got == [1, 2, 2] or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert got == [1, 2, 2], recorded
    assert all(values.count(2) == 1 for values in recorded), recorded


# -- notifications ----------------------------------------------------------------------


def test_notify_with_no_listener_prints_0(matchmaker_url):
    result = run("--url", matchmaker_url, "notify", "nobody.listens", "disk.full", "free=0")
    assert result.returncode == 0, result
    assert result.stdout == "0\n"


@pytest.mark.both_families
def test_listen_prints_what_notify_sends(matchmaker_url, start_cli):
    url = ("--url", matchmaker_url)
    listeners = [
        start_cli(*url, "listen", "events", "--count", "1", "--timeout", "20"),
        start_cli(*url, "listen", "events", "--pool", "audit", "--count", "1", "--timeout", "20"),
    ]
    for _, _, stderr in listeners:
        stderr.until(lambda lines: any(line.startswith("listening on events") for line in lines))
    sent = run(
        *url,
        "notify",
        "events",
        "instance.create",
        "--priority",
        "error",
        "--publisher-id",
        "compute.node-1",
        "--payload",
        '{"id": 7, "name": "x"}',
        "name=vm-7",
    )
    assert sent.returncode == 0, sent
    assert sent.stdout == "2\n"  # one listener of each pool
    for proc, stdout, _ in listeners:
        (line,) = stdout.until(lambda lines: len(lines) >= 1)
        got = json.loads(line)
        assert got["priority"] == "error"
        assert got["publisher_id"] == "compute.node-1"
        assert got["event_type"] == "instance.create"
        assert got["payload"] == {"id": 7, "name": "vm-7"}
        assert set(got["metadata"]) >= {"message_id", "timestamp"}
        assert proc.wait(timeout=10) == 0


def test_listen_stops_cleanly_on_sigterm_and_exits_3_short_of_its_count(matchmaker_url, start_cli):
    url = ("--url", matchmaker_url)
    forever, _, forever_err = start_cli(*url, "listen", "events")
    short, _, short_err = start_cli(*url, "listen", "events", "--count", "2", "--timeout", "1")
    forever_err.until(lambda lines: any("listening" in line for line in lines))
    forever.send_signal(signal.SIGTERM)
    assert forever.wait(timeout=10) == 0
    assert short.wait(timeout=10) == 3
    lines = short_err.until(lambda lines: any("MessagingTimeout" in x for x in lines))
    assert "0 of 2 notifications" in lines[-1]
    assert not any("Traceback" in line for line in forever_err.lines + lines)


# -- targets --------------------------------------------------------------------------


@pytest.mark.both_families
def test_targets_lists_servers_and_listeners(
    matchmaker_url, spawn_server, spawn_listener, tmp_path
):
    server = spawn_server(TOPIC, "node-1")
    listener = spawn_listener("events", "l1", "--pool", "audit")
    conf = tmp_path / "zmq.conf"
    conf.write_text(f"[zmq]\nmatchmaker_url = {matchmaker_url}\n")
    table, lines = run_all(
        ["--url", matchmaker_url, "targets"],
        ["targets", "--json", "--config-file", str(conf)],
    )
    assert table.returncode == 0, table
    header, *rows = table.stdout.splitlines()
    assert header.split() == ["KIND", "EXCHANGE", "TOPIC", "SERVER", "POOL", "ADDRESS", "EXPIRES"]
    cells = [row.split() for row in rows]
    assert ["rpc", "default", TOPIC, "node-1", "-", server.address, "in"] in [
        row[:7] for row in cells
    ]
    assert any(
        row[0] == "notification" and row[4:6] == ["audit", listener.address] for row in cells
    )
    assert lines.returncode == 0, lines
    entries = [json.loads(line) for line in lines.stdout.splitlines()]
    by_kind = {entry["kind"]: entry for entry in entries}
    assert len(entries) == 2, entries
    rpc, note = by_kind["rpc"], by_kind["notification"]
    assert (rpc["topic"], rpc["server"], rpc["address"]) == (TOPIC, "node-1", server.address)
    assert (note["topic"], note["pool"], note["address"]) == ("events", "audit", listener.address)
    assert 0 < rpc["expires_in"] <= 30


def test_targets_of_an_empty_matchmaker(matchmaker_url):
    table, lines = run_all(
        ["--url", matchmaker_url, "targets"], ["--url", matchmaker_url, "targets", "--json"]
    )
    assert (table.returncode, table.stdout) == (0, "")
    assert "nothing is registered" in table.stderr
    assert (lines.returncode, lines.stdout) == (0, "")


# -- what came from the network, printed safely ----------------------------------------

# Clear the screen, retitle the window, a C1 CSI (red), a right-to-left override.
HOSTILE = "\x1b[2J\x1b]0;owned\x07\x9b31m\u202e"
HOSTILE_ESCAPED = "\\x1b[2J\\x1b]0;owned\\x07\\x9b31m\\u202e"
# What a terminal would act on: C0 (newline aside), DEL, C1, the bidi override.
RAW_CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u202e]")


def assert_printable(text: str) -> None:
    assert RAW_CONTROL.search(text) is None, repr(text)


def test_what_a_server_sends_back_is_printed_escaped(matchmaker_url, spawn_server):
    spawn_server(TOPIC, "node-1")
    url = ("--url", matchmaker_url)
    echoed, failed, verbose = run_all(
        [*url, "call", TOPIC, "echo", f"value={HOSTILE}"],
        [*url, "call", TOPIC, "fail", f"message={HOSTILE}"],
        [*url, "--verbose", "call", TOPIC, "fail", f"message={HOSTILE}"],
    )
    assert echoed.returncode == 0, echoed
    assert_printable(echoed.stdout)
    # JSON escapes: the result parses back to exactly what the server sent.
    assert json.loads(echoed.stdout) == HOSTILE
    assert failed.returncode == 1, failed
    assert failed.stderr == f"RemoteError: builtins.ValueError: {HOSTILE_ESCAPED}\n"
    assert verbose.returncode == 1, verbose
    assert_printable(verbose.stderr)
    assert HOSTILE_ESCAPED in verbose.stderr


def test_targets_escapes_what_the_matchmaker_holds(matchmaker_url, tmp_path):
    # Anyone who can write to the matchmaker chooses these strings.
    planted = FileMatchmaker(tmp_path / "mm")
    planted.register(f"default/{TOPIC}", f"evil{HOSTILE}", f"tcp://127.0.0.1:9{HOSTILE}", 30)
    table, lines = run_all(
        ["--url", matchmaker_url, "targets"], ["--url", matchmaker_url, "targets", "--json"]
    )
    assert table.returncode == 0, table
    assert_printable(table.stdout)
    (row,) = table.stdout.splitlines()[1:]
    cells = row.split()
    assert (cells[3], cells[5]) == (f"evil{HOSTILE_ESCAPED}", f"tcp://127.0.0.1:9{HOSTILE_ESCAPED}")
    assert lines.returncode == 0, lines
    assert_printable(lines.stdout)
    entry = json.loads(lines.stdout)
    assert (entry["server"], entry["address"]) == (f"evil{HOSTILE}", f"tcp://127.0.0.1:9{HOSTILE}")


# -- the transport URL from a file or the environment ------------------------------------


def private_file(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text)
    path.chmod(mode)
    return path


def test_the_url_comes_from_a_private_file_or_the_environment(
    matchmaker_url, spawn_server, tmp_path
):
    spawn_server(TOPIC, "node-1")
    url_file = str(private_file(tmp_path / "url", f"{matchmaker_url}\n"))
    # Nothing listens there: a command that used it would fail.
    elsewhere = f"zmq+file://{tmp_path}/elsewhere"
    from_env = run("call", TOPIC, "add", "a=1", "b=2", env={"ZMQACTORS_URL": matchmaker_url})
    from_file, cast, targets = (
        run(*args, env={"ZMQACTORS_URL": elsewhere})
        for args in (
            ("call", TOPIC, "add", "a=1", "b=2", "--url-file", url_file),
            ("--url-file", url_file, "cast", TOPIC, "record", "value=1"),
            ("targets", "--json", "--url-file", url_file),
        )
    )
    for result in (from_env, from_file):
        assert (result.returncode, result.stdout, result.stderr) == (0, "3\n", ""), result
    assert (cast.returncode, cast.stderr) == (0, ""), cast
    assert targets.returncode == 0, targets
    assert json.loads(targets.stdout)["server"] == "node-1"


def test_listen_and_notify_take_the_url_from_a_file_and_the_environment(
    matchmaker_url, start_cli, tmp_path
):
    url_file = str(private_file(tmp_path / "url", matchmaker_url))
    listener, stdout, stderr = start_cli(
        "listen", "events", "--count", "1", "--timeout", "20", "--url-file", url_file
    )
    stderr.until(lambda lines: any(line.startswith("listening on events") for line in lines))
    sent = run("notify", "events", "disk.full", "free=0", env={"ZMQACTORS_URL": matchmaker_url})
    assert (sent.returncode, sent.stdout) == (0, "1\n"), sent
    (line,) = stdout.until(lambda lines: len(lines) >= 1)
    assert json.loads(line)["payload"] == {"free": 0}
    assert listener.wait(timeout=10) == 0


SECRET_URL = "zmq+redis://:s3cret@127.0.0.1:1/0"  # noqa: S105 - a test value


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda d: private_file(d / "url", SECRET_URL, 0o644), "has mode 0644"),
        (lambda d: private_file(d / "url", SECRET_URL, 0o620), "has mode 0620"),
        (lambda d: d / "missing", "cannot be read: No such file or directory"),
        (lambda d: d, "is not a regular file"),
        (lambda d: private_file(d / "url", "  \n"), "is empty"),
        (lambda d: private_file(d / "url", f"{SECRET_URL}\nzmq://\n"), "holds more than one line"),
    ],
    ids=["world-readable", "group-writable", "missing", "directory", "empty", "two-lines"],
)
def test_a_url_file_that_is_not_private_or_not_a_url_is_refused(
    main_in_process, tmp_path, make, expected
):
    path = str(make(tmp_path))
    code, out, err = main_in_process("targets", "--url-file", path)
    assert (code, out) == (2, "")
    assert f"zmqactors targets: error: --url-file '{path}' {expected}" in err
    assert "Traceback" not in err
    assert "s3cret" not in err


def test_a_symlinked_url_file_is_refused(main_in_process, tmp_path):
    target = private_file(tmp_path / "url", SECRET_URL)
    link = tmp_path / "link"
    link.symlink_to(target)
    code, out, err = main_in_process("--url-file", str(link), "targets")
    assert (code, out) == (2, "")
    assert f"--url-file '{link}' is a symbolic link: refused" in err
    assert "s3cret" not in err


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can give a file to another user")
def test_a_url_file_of_another_user_is_refused(main_in_process, tmp_path):
    path = private_file(tmp_path / "url", SECRET_URL)
    os.chown(path, 65534, 65534)
    code, _, err = main_in_process("--url-file", str(path), "targets")
    assert code == 2
    assert f"--url-file '{path}' is owned by uid 65534, not by you (uid 0) or root" in err


def test_a_bad_url_file_exits_2_without_a_traceback(tmp_path):
    path = private_file(tmp_path / "url", SECRET_URL, 0o644)
    both, loose = run_all(
        ["--url", "zmq://", "--url-file", str(path), "targets"],
        ["call", TOPIC, "add", "--url-file", str(path)],
    )
    assert_usage_error(both, "--url and --url-file exclude each other")
    assert_usage_error(loose, f"--url-file '{path}' has mode 0644")
    assert "s3cret" not in both.stderr + loose.stderr
