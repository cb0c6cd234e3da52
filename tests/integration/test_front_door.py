"""The product's front door: the demo, the console script and the entry points."""

from __future__ import annotations

import shutil
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from tests.helpers import run_example

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def test_demo_shows_every_step(tmp_path):
    result = run_example("run_demo.py", tmp_path, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    for expected in (
        "call add(a=2, b=3)",
        "-> 5",
        "['hello from the client']",
        "demo-server (called by alice)",
        "RemoteError builtins.ZeroDivisionError",
        "MessagingTimeout after 0.5",
        "NoRespondersError",
        "demo: all steps behaved as expected",
    ):
        assert expected in result.stdout, result.stdout


def test_console_script_and_option_entry_point():
    script = shutil.which("zmqactors", path=str(Path(sys.executable).parent))
    assert script is not None
    version = subprocess.run(
        [script, "--version"], capture_output=True, text=True, timeout=60, check=True
    )
    assert version.stdout.strip() == "0.1.0"
    names = {ep.name for ep in entry_points(group="oslo.config.opts")}
    assert "zmqactors" in names
    generator = shutil.which("oslo-config-generator", path=str(Path(sys.executable).parent))
    assert generator is not None
    sample = subprocess.run(
        [generator, "--namespace", "zmqactors"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "[zmq]" in sample.stdout
    assert "#executor_size = 16" in sample.stdout
