"""Fixtures shared by every test package."""

from pathlib import Path

import pytest


@pytest.fixture
def matchmaker_url(tmp_path: Path) -> str:
    """Return a file-matchmaker URL private to this test.

    Integration tests use it so they never share, or leave entries in, the
    user's default matchmaker directory.
    """
    return f"zmq+file://{tmp_path}/mm"
