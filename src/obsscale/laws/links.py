"""Link functions of the law: the capability index P (and extra parameters) to the predicted
target, with the derivatives the optimisers and the delta method need; a registry by name."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from obsscale.core.registry import Registry


def expit(p):
    """scipy.special.expit, imported on first use: the config check, which runs when the workflow
    is parsed (a no-op run included), needs the link names only."""
    from scipy.special import expit as _expit

    return _expit(p)


@dataclass(frozen=True)
class Link:
    name: str
    n_extra: int
    # (P, extra) -> Ŷ
    function: Callable[[np.ndarray, np.ndarray], np.ndarray]
    # d Ŷ / d P and d Ŷ / d extra, for the delta method and the Huber gradient
    d_index: Callable[[np.ndarray, np.ndarray], np.ndarray]
    d_extra: Callable[[np.ndarray, np.ndarray], np.ndarray]
    extra_init: tuple[float, ...] = ()
    extra_bounds: tuple[tuple[float, float], ...] = ()

    def height(self, extra: np.ndarray) -> float:
        """h of the form h·σ(P) + (1 − h)."""
        return 1.0 - float(extra[0]) if self.n_extra else 1.0


def _sig_d(p, e):
    s = expit(p)
    return s * (1 - s)


# The floor parameter is b = 1 − h ∈ [0, 0.2], started at b = 0, as in the paper's code.
LINKS: Registry[Link] = Registry("link function")
LINKS.register(
    "sigmoid", Link("sigmoid", 0, lambda p, e: expit(p), _sig_d, lambda p, e: np.zeros((len(p), 0)))
)
LINKS.register(
    "sigmoid_floor",
    Link(
        "sigmoid_floor", 1,
        lambda p, e: (1 - e[0]) * expit(p) + e[0],
        lambda p, e: (1 - e[0]) * _sig_d(p, e),
        lambda p, e: (1 - expit(p))[:, None],
        extra_init=(0.0,), extra_bounds=((0.0, 0.2),),
    ),
)


def get_link(name: str) -> Link:
    return LINKS.get(name)
