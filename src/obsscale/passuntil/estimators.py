"""Per-instance and task-level pass-rate estimates under the PassUntil (negative-binomial) design.

For an instance sampled until its r-th pass, K (the attempts used) is negative-binomial.  The MLE
r / K is biased upward at small p (at r = 1, E[1/K] = -p ln p / (1 - p), about 11 p at p = 1e-5);
(r - 1) / (K - 1) is unbiased for r >= 2 and is the default.  An instance that reached K_max with
fewer than r passes is *censored*: its point value is s / K_max with an exact (Clopper-Pearson)
upper bound, and the flag travels with it into the fits.
"""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pandas as pd
from scipy import stats

log = logging.getLogger(__name__)

ESTIMATORS = ("unbiased", "mle")


def clopper_pearson(successes, trials, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Exact binomial interval for `successes` in `trials` (arrays broadcast)."""
    s = np.asarray(successes, dtype=float)
    n = np.asarray(trials, dtype=float)
    a = 1.0 - level
    with np.errstate(invalid="ignore", divide="ignore"):
        low = np.where(s > 0, stats.beta.ppf(a / 2, s, n - s + 1), 0.0)
        high = np.where(s < n, stats.beta.ppf(1 - a / 2, s + 1, n - s), 1.0)
    return low, high


def unbiased_pass_rate(r: int, K, estimator: str = "unbiased") -> np.ndarray:
    """Point estimate of p from K attempts to the r-th pass.

    "unbiased": (r - 1) / (K - 1), unbiased for r >= 2.  At r = 1 no estimator of that form exists
    (it is 0 whatever K is), so a warning is issued and the MLE r / K is used instead.
    "mle": r / K.
    """
    if estimator not in ESTIMATORS:
        raise ValueError(f"unknown estimator {estimator!r}; expected one of {ESTIMATORS}")
    K = np.asarray(K, dtype=float)
    if estimator == "mle":
        return r / K
    if r < 2:
        warnings.warn(
            "r = 1: (r-1)/(K-1) is not usable; falling back to the MLE r/K, which is biased upward "
            "at small p (by about -ln p / (1 - p))",
            stacklevel=2,
        )
        return r / K
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(K > 1, (r - 1) / (K - 1), 1.0)


def instance_estimates(records: pd.DataFrame, r: int, K_max: int, estimator: str = "unbiased",
                       level: float = 0.95) -> pd.DataFrame:
    """Estimate p for each instance from its counts.

    `records` has one row per instance with columns instance, K (attempts counted), passes.
    Returns instance, K, passes, censored, p_hat, low, high.  `low`/`high` are Clopper-Pearson
    bounds on passes in K attempts (exact for censored instances; for completed ones a binomial
    approximation to the negative-binomial interval).
    """
    df = records[["instance", "K", "passes"]].copy()
    df["K"] = df["K"].astype(int)
    df["passes"] = df["passes"].astype(int)
    bad = df[(df["passes"] > r) | (df["K"] > K_max) | (df["passes"] > df["K"])]
    if len(bad):
        row = bad.iloc[0]
        raise ValueError(
            f"instance {row['instance']!r}: passes={row['passes']}, K={row['K']} inconsistent "
            f"with r={r}, K_max={K_max}"
        )
    df["censored"] = df["passes"] < r
    done = ~df["censored"]
    p = np.empty(len(df))
    if done.any():
        p[done.to_numpy()] = unbiased_pass_rate(r, df.loc[done, "K"].to_numpy(), estimator)
    cens = df["censored"].to_numpy()
    p[cens] = df.loc[cens, "passes"].to_numpy() / K_max
    df["p_hat"] = p
    low, high = clopper_pearson(df["passes"].to_numpy(), df["K"].to_numpy(), level)
    df["low"] = low
    df["high"] = high
    return df


def bootstrap_mean(values, n_boot: int = 1000, level: float = 0.9, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean, resampling the values (instances)."""
    v = np.asarray(values, dtype=float)
    if len(v) == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(v), size=(n_boot, len(v)))
    means = v[idx].mean(axis=1)
    a = (1 - level) / 2
    return float(np.quantile(means, a)), float(np.quantile(means, 1 - a))


def task_pass_until(estimates: pd.DataFrame, n_boot: int = 1000, level: float = 0.9,
                    seed: int = 0) -> dict:
    """Task-level PU = mean over instances of p_hat, with a bootstrap interval over instances."""
    p = estimates["p_hat"].to_numpy(dtype=float)
    low, high = bootstrap_mean(p, n_boot=n_boot, level=level, seed=seed)
    return {
        "PU": float(p.mean()) if len(p) else float("nan"),
        "PU_low": low,
        "PU_high": high,
        "instances": int(len(p)),
        "censored": int(estimates["censored"].sum()),
    }


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from n fixed samples with c passes (Chen et al. 2021): 1 - C(n-c,k)/C(n,k)."""
    if k > n:
        raise ValueError(f"pass@{k} needs at least {k} samples, got n={n}")
    if n - c < k:
        return 1.0
    # Product form avoids the huge binomial coefficients.
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def greedy_accuracy(passed) -> float:
    """Fraction of instances whose greedy (temperature-0) answer passes."""
    v = np.asarray(passed, dtype=float)
    return float(v.mean()) if len(v) else float("nan")
