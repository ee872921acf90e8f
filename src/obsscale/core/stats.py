"""Shared statistics: ordinary least squares of a line with R², standard errors and the
confidence band of the mean (the numbers statsmodels' OLS gives, written out so that the rules
that fit lines do not pay statsmodels' import time)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import stdtrit


@dataclass(frozen=True)
class LineFit:
    """y ≈ intercept + slope · x by ordinary least squares.

    `r2` is NaN when y is constant; `scale` (residual variance) and the standard errors are NaN
    with fewer than three points."""

    intercept: float
    slope: float
    r2: float
    n: int
    scale: float
    xtx_inv: np.ndarray

    @property
    def params(self) -> np.ndarray:
        return np.array([self.intercept, self.slope])

    @property
    def df_resid(self) -> int:
        return self.n - 2

    @property
    def bse(self) -> np.ndarray:
        """Standard errors of (intercept, slope)."""
        return np.sqrt(np.diag(self.xtx_inv) * self.scale)

    def predict(self, x) -> np.ndarray:
        return self.intercept + self.slope * np.asarray(x, float)

    def band(self, x, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Mean prediction with its (1 − alpha) confidence band (Student t)."""
        X = np.column_stack([np.ones_like(np.asarray(x, float)), x])
        mean = X @ self.params
        if self.df_resid < 1:  # a line through two points: no residual variance, no band
            return mean, np.full_like(mean, np.nan), np.full_like(mean, np.nan)
        se = np.sqrt(np.einsum("ij,jk,ik->i", X, self.xtx_inv, X) * self.scale)
        half = stdtrit(self.df_resid, 1 - alpha / 2) * se
        return mean, mean - half, mean + half


def fit_line(x, y) -> LineFit:
    """OLS of y on [1, x] by the normal equations."""
    x = np.asarray(x, float)
    y = np.asarray(y, float)
    X = np.column_stack([np.ones_like(x), x])
    xtx_inv = np.linalg.inv(X.T @ X)
    params = xtx_inv @ X.T @ y
    resid = y - X @ params
    ss_res, ss_tot = float(resid @ resid), float(((y - y.mean()) ** 2).sum())
    r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else np.nan
    scale = ss_res / (len(y) - 2) if len(y) > 2 else np.nan
    return LineFit(float(params[0]), float(params[1]), float(r2), len(y), scale, xtx_inv)


def ols(X: np.ndarray, y: np.ndarray) -> dict:
    """OLS of y on the columns of a design matrix X (include the constant column yourself):
    coefficients `beta`, residual sum of squares, degrees of freedom, residual variance `s2`,
    (XᵀX)⁻¹, standard errors and R²; the PassUntil task law and its curvature test use it."""
    beta, *_ = np.linalg.lstsq(X, y, rcond=None)
    resid = y - X @ beta
    n, k = X.shape
    rss = float(resid @ resid)
    dof = n - k
    s2 = rss / dof if dof > 0 else float("nan")
    xtx_inv = np.linalg.pinv(X.T @ X)
    se = np.sqrt(np.diag(xtx_inv) * s2) if dof > 0 else np.full(k, np.nan)
    tss = float(((y - y.mean()) ** 2).sum())
    return {"beta": beta, "rss": rss, "dof": dof, "s2": s2, "xtx_inv": xtx_inv, "se": se,
            "r2": 1 - rss / tss if tss > 0 else float("nan"), "n": n, "k": k}
