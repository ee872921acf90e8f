"""Per-family linear laws of capability vs log compute (paper Eq. 4, spec §4):
S_{m,k} ≈ θ_{f,k} · log10 C_m + ν_{f,k}, fitted by OLS within each family."""

from __future__ import annotations

import logging
from typing import Sequence

import numpy as np
import pandas as pd
from scipy.special import stdtrit

from obsscale.capability.scores import FAMILY, FLOPS, log10_flops  # noqa: F401  (log10_flops re-exported)

log = logging.getLogger(__name__)


class _OLS:
    """Ordinary least squares of y on [1, x], with the standard errors and the confidence band of
    the mean that statsmodels' OLS gives (written out so that the rules that draw or fit family
    laws do not pay statsmodels' import time)."""

    def __init__(self, x: np.ndarray, y: np.ndarray):
        X = np.column_stack([np.ones_like(x), x])
        self.xtx_inv = np.linalg.inv(X.T @ X)
        self.params = self.xtx_inv @ X.T @ y
        resid = y - X @ self.params
        self.df_resid = len(y) - 2
        ss_res, ss_tot = float(resid @ resid), float(((y - y.mean()) ** 2).sum())
        self.rsquared = 1.0 - ss_res / ss_tot if ss_tot > 0 else np.nan
        self.scale = ss_res / self.df_resid if self.df_resid > 0 else np.nan
        self.bse = np.sqrt(np.diag(self.xtx_inv) * self.scale)

    def band(self, x: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        X = np.column_stack([np.ones_like(x), x])
        mean = X @ self.params
        if self.df_resid < 1:  # a line through two points: no residual variance, no band
            return mean, np.full_like(mean, np.nan), np.full_like(mean, np.nan)
        se = np.sqrt(np.einsum("ij,jk,ik->i", X, self.xtx_inv, X) * self.scale)
        half = stdtrit(self.df_resid, 1 - alpha / 2) * se
        return mean, mean - half, mean + half


class FamilyLaws:
    """OLS of each target column on log10 FLOPs (1E21) within each family.

    `fit(df)` needs columns `Model Family`, `FLOPs (1E21)` and the targets; families with fewer than
    `min_models` models with known FLOPs are skipped.  Learned: `table_` (family, component, n,
    slope, intercept, r2 and standard errors) and `results_` (the OLS fit per pair), used by
    `predict` for the 95 % band of the mean.
    """

    def __init__(self, components: Sequence[str] = ("PC-1", "PC-2", "PC-3"), min_models: int = 2):
        self.components = components
        self.min_models = min_models

    def fit(self, df: pd.DataFrame, y=None) -> "FamilyLaws":
        rows, self.results_, self.x_range_ = [], {}, {}
        known = df[df[FLOPS].notna()]
        for family, group in known.groupby(FAMILY, sort=False):
            if len(group) < self.min_models:
                continue
            x = log10_flops(group[FLOPS]).to_numpy(dtype=float)
            for comp in self.components:
                if comp not in group.columns:
                    raise KeyError(f"family laws: column '{comp}' is not in the table "
                                   f"(available: {[c for c in df.columns if c.startswith('PC-')]})")
                y = group[comp].to_numpy(dtype=float)
                ok = np.isfinite(y)
                if ok.sum() < self.min_models:
                    continue
                res = _OLS(x[ok], y[ok])
                self.results_[(family, comp)] = res
                self.x_range_[(family, comp)] = (float(x[ok].min()), float(x[ok].max()))
                with np.errstate(divide="ignore", invalid="ignore"):
                    rows.append({
                        "family": family, "component": comp, "n": int(ok.sum()),
                        "slope": res.params[1], "intercept": res.params[0],
                        "r2": res.rsquared if ok.sum() > 2 else np.nan,
                        "slope_se": res.bse[1] if ok.sum() > 2 else np.nan,
                        "intercept_se": res.bse[0] if ok.sum() > 2 else np.nan,
                    })
        self.table_ = pd.DataFrame(rows, columns=["family", "component", "n", "slope", "intercept", "r2",
                                                  "slope_se", "intercept_se"])
        return self

    def predict(self, family: str, component: str, x_log10_flops, alpha: float = 0.05) -> pd.DataFrame:
        """Mean prediction with its (1 − alpha) confidence band at the given log10 FLOPs."""
        x = np.asarray(x_log10_flops, dtype=float)
        mean, low, high = self.results_[(family, component)].band(x, alpha)
        return pd.DataFrame({"x": x, "mean": mean, "low": low, "high": high})

    def lines(self, pad: float = 0.07, n: int = 50, alpha: float = 0.05) -> pd.DataFrame:
        """Each fitted line with its (1 − alpha) band of the mean on `n` points over the family's
        log10 FLOPs range widened by `pad` of its span on each side (the figures draw these)."""
        parts = []
        for (family, comp), res in self.results_.items():
            lo, hi = self.x_range_[(family, comp)]
            span = hi - lo if hi > lo else 1.0
            band = self.predict(family, comp, np.linspace(lo - pad * span, hi + pad * span, n), alpha)
            parts.append(band.assign(family=family, component=comp, x_min=lo, x_max=hi))
        cols = ["family", "component", "x", "mean", "low", "high", "x_min", "x_max"]
        return pd.concat(parts, ignore_index=True)[cols] if parts else pd.DataFrame(columns=cols)

    def average_r2(self, component: str, min_models: int = 3) -> float:
        """Unweighted mean of per-family R² over families with at least `min_models` models."""
        t = self.table_[(self.table_["component"] == component) & (self.table_["n"] >= min_models)]
        return float(t["r2"].mean())
