"""The equivalent-compute axis (paper Eq. 7–8): a reference family's line of the capability index
on log10 FLOPs."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from obsscale.core.stats import fit_line


@dataclass
class ReferenceLine:
    """OLS of the capability index on log10 FLOPs within a reference family: P = w·log10 C + b.

    `models` is the reference-fit set, stored explicitly.  x_m = (P_m − b)/w is then model m's
    log10 reference-family-equivalent FLOPs, and the law reads h·σ(w x + b) + (1 − h)."""

    family: str
    slope: float
    intercept: float
    r2: float
    models: list[str] = field(default_factory=list)

    @classmethod
    def fit(cls, family: str, index: np.ndarray, log10_compute: np.ndarray, models) -> "ReferenceLine":
        index = np.asarray(index, float)
        x = np.asarray(log10_compute, float)
        ok = np.isfinite(index) & np.isfinite(x)
        models = [m for m, k in zip(models, ok) if k]
        if ok.sum() < 2 or np.ptp(x[ok]) == 0:
            raise ValueError(
                f"reference family '{family}' has {int(ok.sum())} model(s) with known FLOPs in the "
                f"reference-fit set; at least 2 with different FLOPs are needed for the equivalent-compute axis")
        line = fit_line(x[ok], index[ok])
        return cls(family, line.slope, line.intercept, line.r2, models)

    def equivalent_log10_flops(self, index) -> np.ndarray:
        return (np.asarray(index, float) - self.intercept) / self.slope
