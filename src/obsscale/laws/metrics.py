"""Error metrics of a law's predictions and the area under the error curve of a cutoff sweep."""

from __future__ import annotations

import numpy as np


def mse(y, yhat) -> float:
    y, yhat = np.asarray(y, float), np.asarray(yhat, float)
    return float(np.mean((y - yhat) ** 2)) if len(y) else float("nan")


def mae(y, yhat) -> float:
    y, yhat = np.asarray(y, float), np.asarray(yhat, float)
    return float(np.mean(np.abs(y - yhat))) if len(y) else float("nan")


def area_under_error(test_ratios, errors) -> float:
    """AUE: trapezoidal integral of test error over the test-ratio grid (np.trapezoid; NumPy 2)."""
    r = np.asarray(test_ratios, float)
    e = np.asarray(errors, float)
    ok = np.isfinite(e)
    order = np.argsort(r[ok])
    return float(np.trapezoid(e[ok][order], r[ok][order])) if ok.sum() >= 2 else float("nan")
