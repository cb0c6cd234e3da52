"""An RPC server process for the back-pressure and acknowledged-cast tests.

``python ack_server.py --url URL --topic T --server N [--executor-size K]``
prints ``ready ADDRESS`` on stdout once serving and stops at SIGTERM. Its
endpoint records what casts bring, optionally after sleeping (a slow server).
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

# The process boilerplate (arguments, transport, SIGTERM) is the integration
# tests' server script's.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
from serve import serve


class Recorder:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._got: list[object] = []

    def record(self, value: object, seconds: float = 0.0, pad: bytes = b"") -> None:
        del pad  # only there to make the message large
        if seconds:
            time.sleep(seconds)
        with self._lock:
            self._got.append(value)

    def recorded(self) -> list[object]:
        with self._lock:
            return list(self._got)

    def count(self) -> int:
        with self._lock:
            return len(self._got)


if __name__ == "__main__":
    serve(lambda _name: Recorder(), show_pid=False)
