"""The fork and threading examples run as the README says, and end cleanly."""

from __future__ import annotations

import re
import selectors
import signal
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.fork

TIMEOUT = 10.0
START_TIMEOUT = 30.0


def summary_of(output: str) -> dict[str, str]:
    line = next(line for line in output.splitlines() if line.startswith("summary: "))
    return dict(field.split("=", 1) for field in line.removeprefix("summary: ").split())


def run_example(kit, script: str, *args: str, timeout: float = 60.0):
    """Run ``examples/SCRIPT ARGS...`` to completion; it must exit 0."""
    done = kit.run_python(str(kit.EXAMPLES / script), *args, timeout=timeout)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def test_prefork_server_spreads_calls_over_its_workers(matchmaker_url, kit):
    done = run_example(
        kit, "prefork_server.py", "--url", matchmaker_url, "--workers", "3", "--calls", "30"
    )
    serving = re.findall(r"^worker (\d+) serving at tcp://\S+$", done.stdout, re.MULTILINE)
    answered = dict(re.findall(r"^worker (\d+) answered (\d+) calls$", done.stdout, re.MULTILINE))
    exited = re.findall(r"^worker (\d+) exited with 0$", done.stdout, re.MULTILINE)
    assert len(set(serving)) == 3
    assert set(answered) == set(serving) == set(exited)
    assert sum(int(n) for n in answered.values()) == 30
    assert "all workers served and exited cleanly" in done.stdout


def test_threaded_daemon_stops_cleanly_on_sigterm(matchmaker_url, kit):
    script = str(kit.EXAMPLES / "threaded_daemon.py")
    proc = subprocess.Popen(
        [sys.executable, script, "--url", matchmaker_url, "--seconds", "60"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(proc.stdout, selectors.EVENT_READ)
            assert selector.select(START_TIMEOUT), "the daemon did not start"
            assert proc.stdout.readline().startswith("ready tcp://")
        time.sleep(1.0)  # let the workers call for a while
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=TIMEOUT)
        assert time.monotonic() - started < TIMEOUT
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=TIMEOUT)
    assert proc.returncode == 0, out + err
    summary = summary_of(out)
    assert summary["stopped-by"] == "SIGTERM"
    assert summary["errors"] == "0"
    assert int(summary["calls"]) > 0
    assert int(summary["served"]) == int(summary["calls"])


def test_threaded_daemon_stops_by_itself_after_its_time(matchmaker_url, kit):
    done = run_example(
        kit, "threaded_daemon.py", "--url", matchmaker_url, "--seconds", "1", "--workers", "4"
    )
    summary = summary_of(done.stdout)
    assert summary["stopped-by"] == "timer"
    assert summary["errors"] == "0"
    assert summary["workers"] == "4"
    assert int(summary["calls"]) > 0
