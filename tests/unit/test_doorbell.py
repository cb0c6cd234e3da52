"""actors.doorbell: a descriptor that wakes a thread sleeping in poll."""

from __future__ import annotations

import os
import threading

import pytest

from tests.unit.actor_kit import TIMEOUT, readable
from zmqactors.actors.doorbell import Doorbell

pytestmark = pytest.mark.unit


def test_doorbell_rings_clears_and_closes():
    bell = Doorbell()
    try:
        fd = bell.fileno()
        assert not readable(fd)
        bell.ring()
        bell.ring()
        assert readable(fd, TIMEOUT)
        bell.clear()
        assert not readable(fd)
        bell.clear()  # nothing to clear: never blocks
    finally:
        bell.close()
    assert bell._closed
    with pytest.raises(OSError, match="Bad file descriptor"):
        os.fstat(fd)
    bell.close()  # idempotent
    bell.ring()  # ringing a closed bell is harmless


def test_doorbell_rings_from_another_thread():
    bell = Doorbell()
    try:
        ringer = threading.Thread(target=bell.ring)
        ringer.start()
        ringer.join(TIMEOUT)
        assert readable(bell.fileno(), TIMEOUT)
    finally:
        bell.close()
