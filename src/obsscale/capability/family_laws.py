"""Per-family linear laws of capability vs log compute (paper Eq. 4, spec §4):
S_{m,k} ≈ θ_{f,k} · log10 C_m + ν_{f,k}, fitted by OLS within each family."""

from __future__ import annotations

import logging
from typing import Sequence

import numpy as np
import pandas as pd

from obsscale.capability.scores import FAMILY, FLOPS, log10_flops
from obsscale.core.estimator import StatefulEstimator
from obsscale.core.stats import LineFit, fit_line

log = logging.getLogger(__name__)


class FamilyLaws(StatefulEstimator):
    """OLS of each target column on log10 FLOPs (1E21) within each family.

    `fit(df)` needs columns `Model Family`, `FLOPs (1E21)` and the targets; families with fewer than
    `min_models` models with known FLOPs are skipped.  Learned: `table_` (family, component, n,
    slope, intercept, r2 and standard errors) and `results_` (the OLS fit per pair,
    `obsscale.core.stats.fit_line`), used by `predict` for the 95 % band of the mean.
    """

    TABLE_COLUMNS = ["family", "component", "n", "slope", "intercept", "r2", "slope_se", "intercept_se"]

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
                res = fit_line(x[ok], y[ok])
                self.results_[(family, comp)] = res
                self.x_range_[(family, comp)] = (float(x[ok].min()), float(x[ok].max()))
                rows.append(_table_row(family, comp, res))
        self.table_ = pd.DataFrame(rows, columns=self.TABLE_COLUMNS)
        return self

    def _encode_learned(self) -> dict:
        fits = [{"family": f, "component": c, "intercept": r.intercept, "slope": r.slope, "r2": r.r2, "n": r.n,
                 "scale": r.scale, "xtx_inv": r.xtx_inv.tolist(), "x_range": list(self.x_range_[(f, c)])}
                for (f, c), r in self.results_.items()]
        return {"results_": fits}

    @classmethod
    def _decode_learned(cls, learned: dict, lists: frozenset = frozenset()) -> dict:
        results = {(r["family"], r["component"]): LineFit(r["intercept"], r["slope"], r["r2"], r["n"], r["scale"],
                                                          np.asarray(r["xtx_inv"], float))
                   for r in learned["results_"]}
        x_range = {(r["family"], r["component"]): tuple(r["x_range"]) for r in learned["results_"] if "x_range" in r}
        table = pd.DataFrame([_table_row(f, c, r) for (f, c), r in results.items()], columns=cls.TABLE_COLUMNS)
        return {"results_": results, "table_": table, "x_range_": x_range}

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


def _table_row(family: str, component: str, res: LineFit) -> dict:
    """One row of `FamilyLaws.table_`; R² and standard errors need a third model."""
    enough = res.n > 2
    with np.errstate(divide="ignore", invalid="ignore"):
        return {"family": family, "component": component, "n": res.n, "slope": res.slope,
                "intercept": res.intercept, "r2": res.r2 if enough else np.nan,
                "slope_se": res.bse[1] if enough else np.nan, "intercept_se": res.bse[0] if enough else np.nan}
