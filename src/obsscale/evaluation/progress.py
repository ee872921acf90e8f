"""Progress of an lm-eval run in the job's log (obsscale.core.progress).

lm-eval hands a model all requests of one kind (log-likelihood, rolling log-likelihood,
generation) in one call, behind its response cache, and shows a progress bar on stderr only.
`report_progress` makes a model object take each such call in pieces of at most 5 % of its
requests (the model batches within each piece as before) and logs a progress line after each
piece and at least once a minute: requests done / total, rate and ETA.  Requests answered from
the response cache never reach the model and are not counted; lm-eval logs their number.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from obsscale.core.progress import INTERVAL_S, STEP, Progress, chunk_bounds

__all__ = ["REQUEST_TYPES", "report_progress"]

REQUEST_TYPES = ("loglikelihood", "loglikelihood_rolling", "generate_until")

log = logging.getLogger(__name__)


def _in_pieces(name: str, method: Callable, logger: logging.Logger, step: float, interval: float):
    def run(requests, *args: Any, **kwargs: Any) -> list:
        requests = list(requests)
        results: list = []
        with Progress(f"{name} requests", len(requests), unit="requests", logger=logger,
                      step=step, interval=interval) as progress:
            for start, stop in chunk_bounds(len(requests), step):
                results.extend(method(requests[start:stop], *args, **kwargs))
                progress.advance(stop - start)
        return results

    return run


def report_progress(lm: Any, logger: logging.Logger | None = None, *, step: float = STEP,
                    interval: float = INTERVAL_S) -> Any:
    """Wrap the request methods of the lm-eval model object `lm` (in place; returns it)."""
    logger = logger or log
    for name in REQUEST_TYPES:
        method = getattr(lm, name, None)
        if callable(method):
            setattr(lm, name, _in_pieces(name, method, logger, step, interval))
    return lm
