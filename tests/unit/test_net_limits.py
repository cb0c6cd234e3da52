"""Which limit a ZeroMQ error means (`zmqactors.net.limits.limit_error`), without exhausting one.

The limits themselves are reached for real in tests/integration/test_limits.py.
"""

from __future__ import annotations

import errno
import resource

import pytest
import zmq

from zmqactors.errors import ResourceLimitError
from zmqactors.net import limits
from zmqactors.net.context import max_sockets

pytestmark = pytest.mark.unit


def test_enfile_names_the_system_file_table():
    error = limits.limit_error(zmq.ZMQError(errno.ENFILE), "bind tcp://127.0.0.1:0")
    assert isinstance(error, ResourceLimitError)
    assert str(error).startswith("cannot bind tcp://127.0.0.1:0: the system's file table is full")


def test_emfile_far_from_the_descriptor_limit_names_max_sockets():
    error = limits.limit_error(zmq.ZMQError(errno.EMFILE), "open a ZeroMQ socket")
    assert isinstance(error, ResourceLimitError)
    assert f"max_sockets={max_sockets()}" in str(error)
    assert "raise the option max_sockets" in str(error)


def test_emfile_at_the_descriptor_limit_names_rlimit_nofile(monkeypatch):
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    monkeypatch.setattr(limits, "_open_descriptors", lambda: soft)
    error = limits.limit_error(zmq.ZMQError(errno.EMFILE), "open a ZeroMQ socket")
    assert isinstance(error, ResourceLimitError)
    assert f"{soft} of its RLIMIT_NOFILE={soft}" in str(error)
    assert limits.descriptors_exhausted() is not None


@pytest.mark.parametrize("code", [errno.EADDRINUSE, errno.EINVAL, errno.EPROTONOSUPPORT])
def test_other_errors_are_no_limit(code):
    assert limits.limit_error(zmq.ZMQError(code), "bind") is None


def test_descriptors_far_from_the_limit_are_not_exhausted():
    assert limits.descriptors_exhausted() is None
