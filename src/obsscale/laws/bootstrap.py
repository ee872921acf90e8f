"""Uncertainty of a fitted law: 95 % bands from refits on training models resampled with
replacement (the delta-method band is `ObservationalScalingLaw.predict_delta_band`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from obsscale.laws.law import ObservationalScalingLaw, as_2d
from obsscale.laws.links import get_link
from obsscale.laws.optimisers import get_optimiser, predict_params


@dataclass
class BootstrapBand:
    """Refits of a law on training models resampled with replacement.

    params[i] is the i-th refit's parameter vector (rows of failed refits are NaN)."""

    params: np.ndarray
    link: str
    n_features: int
    level: float

    def predictions(self, X) -> np.ndarray:
        X = as_2d(X)
        link = get_link(self.link)
        out = np.full((len(self.params), len(X)), np.nan)
        for i, p in enumerate(self.params):
            if np.isfinite(p).all():
                out[i] = predict_params(link, self.n_features, p, X)
        return out

    def band(self, X) -> tuple[np.ndarray, np.ndarray]:
        return percentile_band(self.predictions(X), self.level)


def percentile_band(samples: np.ndarray, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    a = (1 - level) / 2
    samples = np.asarray(samples, float)
    samples = samples[np.isfinite(samples).all(axis=1)]  # failed refits are whole NaN rows
    if not len(samples):
        nan = np.full(samples.shape[1], np.nan)
        return nan, nan
    lo, hi = np.quantile(samples, [a, 1 - a], axis=0)
    return lo, hi


def bootstrap_law(law: ObservationalScalingLaw, X, y, n_boot: int = 200, level: float = 0.95,
                  random_state: int = 0) -> BootstrapBand:
    """Clone + refit on resampled training models (cases bootstrap).  Each refit starts from the
    full fit (one start) so that it tracks the same optimum; diverged refits are kept (they are
    part of the law's uncertainty) but non-converged ones are dropped."""
    law._check_fitted()
    X = as_2d(X)
    y = np.asarray(y, float)
    rng = np.random.default_rng(random_state)
    link = get_link(law.link)
    solve = get_optimiser(law.estimator)
    options = {"huber_delta": law.huber_delta, "max_nfev": law.max_nfev}
    n = len(y)
    params = np.full((n_boot, len(law.params_)), np.nan)
    for i in range(n_boot):
        idx = rng.integers(0, n, n)
        if np.unique(y[idx]).size < 2:
            continue
        # The refit is the law's own estimator from the full fit's optimum (no diagnostics needed).
        p, ok, _ = solve(link, law.n_features_in_, X[idx], y[idx], law.params_, options)
        if ok and np.isfinite(p).all():
            params[i] = p
    return BootstrapBand(params, law.link, law.n_features_in_, level)
