"""Progress of a PassUntil sampling job in its log (obsscale.core.progress).

The engine (obsscale.passuntil.sampling) hands the backend one call per round with every sample
of the round, and logs a line per finished round.  Rounds grow geometrically, so the last ones
can take hours: `ProgressBackend` feeds each call to the backend in pieces of at most 5 % of its
samples (whole batches of the backend, so that the HF backend batches exactly as before) and logs
samples done / total of the round, rate and ETA after each piece and at least once a minute.
A sample depends on its own seed only, so the pieces draw the same samples as one call would.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from obsscale.core.progress import INTERVAL_S, STEP, Progress, chunk_bounds
from obsscale.passuntil.backends import Backend, Generation

__all__ = ["ProgressBackend"]

log = logging.getLogger(__name__)


class ProgressBackend(Backend):
    """A backend that passes every call to `backend` in pieces and logs progress lines."""

    def __init__(self, backend: Backend, logger: logging.Logger | None = None, *,
                 step: float = STEP, interval: float = INTERVAL_S):
        self.backend = backend
        self.name = getattr(backend, "name", "backend")
        self.logger = logger or log
        self.step, self.interval = step, interval
        # The HF backend batches `max_batch_size` prompts per `generate`: pieces of whole batches.
        self.multiple = int(getattr(backend, "max_batch_size", 1) or 1)
        self.calls = 0

    def _pieces(self, what: str, n: int, call) -> list[Generation]:
        out: list[Generation] = []
        with Progress(what, n, unit="samples", logger=self.logger, step=self.step,
                      interval=self.interval) as progress:
            for start, stop in chunk_bounds(n, self.step, self.multiple):
                out.extend(call(start, stop))
                progress.advance(stop - start)
        return out

    def sample(self, prompts: Sequence[str], seeds: Sequence[int], **kwargs) -> list[Generation]:
        if len(prompts) != len(seeds):
            raise ValueError("one seed per prompt")
        self.calls += 1
        return self._pieces(
            f"sampling call {self.calls}", len(prompts),
            lambda a, b: self.backend.sample(prompts[a:b], seeds[a:b], **kwargs))

    def greedy(self, prompts: Sequence[str], **kwargs) -> list[Generation]:
        return self._pieces("greedy decoding", len(prompts),
                            lambda a, b: self.backend.greedy(prompts[a:b], **kwargs))
