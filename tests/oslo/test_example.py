"""examples/oslo_service.py runs as a user would run it."""

from __future__ import annotations

import pytest

from tests.helpers import run_example

pytestmark = pytest.mark.integration


def test_oslo_example_calls_and_casts(tmp_path):
    result = run_example("oslo_service.py", tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.split() == ["3"]
