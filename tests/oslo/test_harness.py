"""The harness keeps its promises: oslo's tests run on plain threads, nothing is monkey patched."""

from __future__ import annotations

import socket
import sys
import threading
import time

import pytest
from oslo_service import backend as oslo_service_backend

pytestmark = pytest.mark.unit


def test_real_eventlet_is_never_imported():
    assert sys.modules["eventlet"] is None
    with pytest.raises(ImportError):
        import eventlet  # noqa: F401, PLC0415, TID251 - proving it cannot be imported


def test_oslo_test_package_called_the_stand_ins_monkey_patch(eventlet_monkey_patch_calls):
    assert eventlet_monkey_patch_calls >= 1


def test_standard_library_is_not_patched():
    assert socket.socket.__module__ == "socket"
    assert threading.Thread.__module__ == "threading"
    assert time.sleep.__module__ == "time"


def test_oslo_service_runs_its_threading_backend():
    assert oslo_service_backend.get_backend_type() is oslo_service_backend.BackendType.THREADING


def test_oslo_servers_asked_for_eventlet_get_threads():
    import oslo_messaging  # noqa: PLC0415
    from oslo_config import cfg  # noqa: PLC0415

    transport = oslo_messaging.get_rpc_transport(cfg.ConfigOpts(), url="fake:/")
    try:
        with pytest.warns(DeprecationWarning, match="executor"):
            server = oslo_messaging.get_rpc_server(
                transport, oslo_messaging.Target(topic="t", server="s"), [], executor="eventlet"
            )
        assert server.executor_type == "threading"
    finally:
        transport.cleanup()
