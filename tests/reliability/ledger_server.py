"""An RPC server process for the reliability tests: records every delivery it serves.

Prints ``ready ADDRESS PID`` on stdout once bound and registered; SIGTERM stops
it. Every ``work`` call and ``note`` cast appends ``[id, addressed]`` to a
record that the harness drains with ``drain`` (bounded chunks, so the record
never grows across a long soak). ``sleep`` makes a slow call for the fault tests.
"""

from __future__ import annotations

import collections
import os
import sys
import threading
import time
from pathlib import Path

# The process boilerplate (arguments, transport, SIGTERM) is the integration
# tests' server script's.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
from serve import serve


class LedgerEndpoint:
    """What the harness calls; thread-safe (several worker threads run it)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._lock = threading.Lock()
        self._records: collections.deque[tuple[int, str]] = collections.deque()

    def work(self, id: int, addressed: str, payload: str) -> dict[str, object]:  # noqa: A002 - the ledger's word
        with self._lock:
            self._records.append((id, addressed))
        return {"id": id, "server": self.name, "payload": payload}

    def note(self, id: int, addressed: str) -> None:  # noqa: A002 - the ledger's word
        with self._lock:
            self._records.append((id, addressed))

    def drain(self, limit: int) -> list[tuple[int, str]]:
        with self._lock:
            count = min(limit, len(self._records))
            return [self._records.popleft() for _ in range(count)]

    def whoami(self) -> str:
        return self.name

    def pid(self) -> int:
        return os.getpid()

    def sleep(self, seconds: float, id: int = 0) -> float:  # noqa: A002 - the ledger's word
        if id:  # recorded before it sleeps: the harness sees the call has started
            self.note(id, "")
        time.sleep(seconds)
        return seconds


if __name__ == "__main__":
    serve(LedgerEndpoint, show_pid=True)
