"""The notification and fanout examples run as the README tells a user to run them."""

from __future__ import annotations

import pytest

from tests.helpers import run_example

pytestmark = pytest.mark.integration


def test_notifications_example_gives_each_pool_every_notification(tmp_path):
    result = run_example("notifications.py", tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stderr == ""
    out = result.stdout
    assert "sent 10 notifications" in out
    assert "audit-1    got [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]" in out
    assert "audit pool: 10 of 10 -> every notification, once" in out
    assert "billing pool: 10 of 10 -> every notification, once" in out
    assert "billing-1" in out
    assert "billing-2" in out
    assert out.rstrip().endswith("notifications: each pool got every notification")


def test_fanout_example_reaches_each_server_once(tmp_path):
    result = run_example("fanout.py", tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stderr == ""
    out = result.stdout
    for server in ("node-a", "node-b", "node-c"):
        assert f"{server} got reload [1]" in out
        assert f"whoami() -> {server}" in out
    assert out.rstrip().endswith("fanout: every server got it exactly once")
