"""Progress lines for the log of a long job: done / total, rate and ETA.

A cluster job's log file is all its user sees (progress bars go to stderr, whose SLURM output
file the executor plugin deletes when the job succeeds), so the evaluation and sampling stages
report through the logging module: a line each time another `step` of the work (5 %) is done,
and at least once a minute while the job is busy, even when nothing finished in that minute.  Work is handed to a backend
in `chunk_bounds` pieces so that the counts move at least every `step`.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable

__all__ = ["Progress", "chunk_bounds", "format_duration"]

STEP = 0.05
INTERVAL_S = 60.0


def chunk_bounds(total: int, step: float = STEP, multiple: int = 1) -> list[tuple[int, int]]:
    """(start, stop) of consecutive pieces of `total` items, each at most `step` of the total
    and a multiple of `multiple` items (a backend's batch), but never smaller than one batch."""
    if total <= 0:
        return []
    size = max(1, math.floor(total * step))
    if multiple > 1:
        size = max(multiple, size // multiple * multiple)
    return [(start, min(start + size, total)) for start in range(0, total, size)]


def format_duration(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


class Progress:
    """Counts `total` items of work named `what` and logs progress lines to `logger`.

    A line is written at the start, before the unreported count could pass `step` of the total,
    at the end, and whenever `interval` seconds passed since the last line (a background thread
    keeps that promise while the work is busy).  Use as a context manager, calling `advance(n)`.
    """

    def __init__(
        self,
        what: str,
        total: int,
        *,
        unit: str = "items",
        logger: logging.Logger | None = None,
        step: float = STEP,
        interval: float = INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.what, self.total, self.unit = what, int(total), unit
        self.logger = logger or logging.getLogger("obsscale.progress")
        self.step, self.interval, self.clock = step, interval, clock
        self.done = 0
        self.lines: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._started = self._last_line = clock()
        self._last_done = 0
        self._final_written = False

    def __enter__(self) -> "Progress":
        self._emit()
        if self.interval and self.interval > 0:
            self._thread = threading.Thread(target=self._heartbeat, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def advance(self, n: int = 1) -> None:
        """Count `n` more items done; log a line if another advance of the same size would
        leave more than `step` of the total unreported, or a minute passed since the last."""
        with self._lock:
            self.done = min(self.total, self.done + int(n))
            unreported = self.done - self._last_done
            due = self.interval > 0 and self.clock() - self._last_line >= self.interval
            if unreported + n > self.step * self.total or self.done == self.total or due:
                self._emit_locked()

    def line(self) -> str:
        elapsed = self.clock() - self._started
        pct = 100.0 * self.done / self.total if self.total else 100.0
        text = f"{self.what}: {self.done}/{self.total} {self.unit} ({pct:.0f}%)"
        if self.done and elapsed > 0:
            rate = self.done / elapsed
            eta = (self.total - self.done) / rate
            text += (f", {rate:.3g} {self.unit}/s, elapsed {format_duration(elapsed)}, "
                     f"ETA {format_duration(eta)}")
        else:
            text += f", elapsed {format_duration(elapsed)}, ETA unknown"
        return text

    def _emit(self) -> None:
        with self._lock:
            self._emit_locked()

    def _emit_locked(self) -> None:
        if self._final_written:
            return
        self._final_written = self.done == self.total and self.total > 0
        text = self.line()
        self._last_line = self.clock()
        self._last_done = self.done
        self.lines.append(text)
        self.logger.info("%s", text)

    def _heartbeat(self) -> None:
        while not self._stop.wait(min(self.interval, 5.0)):
            with self._lock:
                if self.done < self.total and self.clock() - self._last_line >= self.interval:
                    self._emit_locked()
