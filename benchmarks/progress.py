"""Progress of a long measurement on stderr: what runs, for how long, about how long is left.

``make bench``, ``make bench-scale`` and the soaks run for minutes; a line
every few seconds says they are alive and when they will be done. Estimates
come from the planned durations, so "left" is a planned figure, not a promise.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import TYPE_CHECKING, Self

if TYPE_CHECKING:
    from typing import TextIO

__all__ = ["Progress"]


def _clock(seconds: float) -> str:
    seconds = max(0, round(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}" if seconds >= 60 else f"{seconds} s"


class Progress:
    """Stages with planned durations; a ticker thread prints where the run is every ``every`` s."""

    def __init__(
        self, planned: float, *, every: float = 10.0, stream: TextIO | None = None
    ) -> None:
        self._planned = planned
        self._every = every
        self._stream = stream or sys.stderr
        self._started = time.monotonic()
        self._stage = "starting"
        self._stage_end = self._started
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._tick, name="progress", daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=self._every + 1)
        self._print(f"done in {_clock(time.monotonic() - self._started)}")

    def stage(self, text: str, planned: float) -> None:
        """``text`` starts now and should take about ``planned`` seconds."""
        with self._lock:
            self._stage = text
            self._stage_end = time.monotonic() + planned
        self._print(f"{text} (about {_clock(planned)}; {self._left()} left in all)")

    def _left(self) -> str:
        return "about " + _clock(self._planned - (time.monotonic() - self._started))

    def _tick(self) -> None:
        while not self._stop.wait(self._every):
            with self._lock:
                stage = self._stage
            self._print(f"still {stage}; {self._left()} left in all")

    def _print(self, text: str) -> None:
        elapsed = _clock(time.monotonic() - self._started)
        print(f"[{elapsed:>5}] {text}", file=self._stream, flush=True)
