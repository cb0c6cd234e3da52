"""Fixtures of the reliability suite: the ledger module, server processes, redis-server.

Test modules cannot import each other (``--import-mode=importlib``), so
``ledger.py`` (also a script: ``make soak``) is handed out by a fixture, and
the redis-server fixtures are borrowed from ``tests/integration/conftest.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.helpers import load_module

if TYPE_CHECKING:
    import types
    from collections.abc import Callable, Iterator

HERE = Path(__file__).resolve().parent


_load = load_module


_ledger = _load("zmqactors_reliability_ledger", HERE / "ledger.py")
_rolling = _load("zmqactors_reliability_rolling", HERE / "rolling.py")
_redis = _load("zmqactors_reliability_redis", HERE.parent / "integration" / "conftest.py")

# The real redis-server processes of the integration suite (free ports, killed after).
start_redis = _redis.start_redis
redis_server = _redis.redis_server
etcd_server = _redis.etcd_server


@pytest.fixture
def ledger() -> types.ModuleType:
    """``tests/reliability/ledger.py``: the harness, its server processes and its report."""
    return _ledger


@pytest.fixture
def rolling() -> types.ModuleType:
    """``tests/reliability/rolling.py``: a rolling restart under load."""
    return _rolling


@pytest.fixture
def start_server(matchmaker_url: str) -> Iterator[Callable[..., object]]:
    """Start ``ledger_server.py`` processes (default: on this test's file matchmaker).

    ``start(name, url=..., prefix=(...))`` returns a started `ServerProcess`;
    every one is stopped (SIGCONT, SIGTERM, SIGKILL) after the test.
    """
    started: list[object] = []

    def start(name: str, *, url: str | None = None, **kwargs: object) -> object:
        server = _ledger.ServerProcess(url or matchmaker_url, name, **kwargs)
        started.append(server)
        return server.start()

    yield start
    for server in reversed(started):
        server.stop()  # type: ignore[attr-defined]
