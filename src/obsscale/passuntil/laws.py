"""Task scaling laws of PassUntil: PU(N) = exp(-c N^(-alpha)), i.e. log(-log PU) = log c - alpha log N.

- `TaskScalingLaw`: OLS of F = log(-log PU) on log N over the models of a series, with prediction
  intervals for held-out (larger) models.
- `InstanceScalingLaw`: the same law per instance; the task prediction is the mean of the instance
  predictions (the paper finds this improves aggregate prediction).
- `curvature_test`: linear vs quadratic F in log N -> "linear", "accelerated" (concave F: the
  improvement speeds up, the paper's accelerated emergence) or "sub-scaling" (convex F).
- `CurvedTaskLaw`: the quadratic in log N of that test, as a predictor: where the test rejects the
  line on the fitted models, the law's form does not hold for the series and its extrapolation is
  the quadratic's, with the quadratic's prediction interval.
- `compare_mixture`: a two-component "multiple circuits" mixture against the single law by AIC/BIC.

N is any monotone scale measure (parameters, FLOPs, ...); only log N enters.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import optimize, special, stats

from obsscale.core.stats import ols


def _valid(N, pu) -> tuple[np.ndarray, np.ndarray]:
    N = np.asarray(N, dtype=float)
    pu = np.asarray(pu, dtype=float)
    if N.shape != pu.shape:
        raise ValueError(f"N and PU differ in shape: {N.shape} vs {pu.shape}")
    # PU = 0 (nothing seen) or 1 (always passes) has no finite log(-log PU): such models carry no
    # information about c and alpha under the law and are left out of the fit.
    mask = np.isfinite(N) & np.isfinite(pu) & (N > 0) & (pu > 0) & (pu < 1)
    return N[mask], pu[mask]


def require_columns(df: pd.DataFrame, need: set, what: str) -> None:
    """Raise ValueError naming the columns of `need` that `df` (called `what`) lacks."""
    missing = need - set(df.columns)
    if missing:
        raise ValueError(f"{what} lack columns {sorted(missing)}")


def loglog(pu) -> np.ndarray:
    """F = log(-log PU), the linearising transform of the task scaling law."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log(-np.log(np.asarray(pu, dtype=float)))


def _aic(rss: float, n: int, k: int, corrected: bool = False) -> float:
    # Gaussian log-likelihood up to a constant; the floor keeps exact fits finite.  The small-sample
    # correction (AICc) matters for the mixture test: a series has ~10 models and the mixture 5
    # parameters, where plain AIC prefers the mixture on pure noise about a third of the time.
    aic = n * np.log(max(rss, 1e-300) / n) + 2 * k
    if corrected:
        aic += 2 * k * (k + 1) / (n - k - 1) if n - k - 1 > 0 else np.inf
    return aic


def _bic(rss: float, n: int, k: int) -> float:
    return n * np.log(max(rss, 1e-300) / n) + k * np.log(n)


class TaskScalingLaw:
    """PU(N) = exp(-c N^(-alpha)) fitted by OLS of log(-log PU) on log N.

    Parameters
    ----------
    interval : float
        Coverage of the prediction intervals of `predict_interval`.
    """

    def __init__(self, interval: float = 0.9):
        self.interval = interval

    def fit(self, N, pu) -> "TaskScalingLaw":
        N, pu = _valid(N, pu)
        if len(N) < 2 or np.unique(N).size < 2:
            raise ValueError(f"a task scaling law needs PU in (0, 1) at >= 2 model sizes; got {len(N)}")
        X = np.column_stack([np.ones(len(N)), np.log(N)])
        fit = ols(X, loglog(pu))
        self.log_c_ = float(fit["beta"][0])
        self.c_ = float(np.exp(self.log_c_))
        self.alpha_ = float(-fit["beta"][1])
        self.r2_ = float(fit["r2"])
        self.n_models_ = int(len(N))
        self.dof_ = int(fit["dof"])
        self.sigma2_ = float(fit["s2"])
        self.xtx_inv_ = fit["xtx_inv"]
        self.N_fit_ = N
        return self

    def predict_loglog(self, N) -> np.ndarray:
        return self.log_c_ - self.alpha_ * np.log(np.asarray(N, dtype=float))

    def predict(self, N) -> np.ndarray:
        return np.exp(-np.exp(self.predict_loglog(N)))

    def predict_interval(self, N, interval: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(low, high) prediction interval of PU at N from the t interval of F (NaN with no dof)."""
        x = np.log(np.atleast_1d(np.asarray(N, dtype=float)))
        F = self.log_c_ - self.alpha_ * x
        return _pu_band(self, F, np.column_stack([np.ones_like(x), x]),
                        self.interval if interval is None else interval)


def _pu_band(fit, F: np.ndarray, X0: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    """(low, high) PU from the t prediction interval of F, predicted at the design rows `X0` of an
    OLS fit of F (its sigma2_, xtx_inv_, dof_); NaN with no degrees of freedom."""
    if fit.dof_ <= 0 or not np.isfinite(fit.sigma2_):
        nan = np.full_like(F, np.nan)
        return nan, nan
    var = fit.sigma2_ * (1 + np.einsum("ij,jk,ik->i", X0, fit.xtx_inv_, X0))
    half = stats.t.ppf(0.5 + level / 2, fit.dof_) * np.sqrt(var)
    # F decreases in PU: the upper F bound is the lower PU bound.
    return np.exp(-np.exp(F + half)), np.exp(-np.exp(F - half))


class CurvedTaskLaw:
    """F = log(-log PU) as a quadratic in log N (centred), fitted by OLS: the curvature test's
    alternative, used to predict where that test rejects the line (`curvature_test`)."""

    def __init__(self, interval: float = 0.9):
        self.interval = interval

    def fit(self, N, pu) -> "CurvedTaskLaw":
        N, pu = _valid(N, pu)
        if np.unique(N).size < 4:
            raise ValueError(f"a curved task law needs PU in (0, 1) at >= 4 model sizes; got {np.unique(N).size}")
        x = np.log(N)
        self.x_mean_ = float(x.mean())
        fit = ols(self._design(x), loglog(pu))
        self.beta_ = fit["beta"]
        self.r2_ = float(fit["r2"])
        self.n_models_ = int(len(N))
        self.dof_ = int(fit["dof"])
        self.sigma2_ = float(fit["s2"])
        self.xtx_inv_ = fit["xtx_inv"]
        return self

    def _design(self, x) -> np.ndarray:
        xc = np.asarray(x, dtype=float) - self.x_mean_
        return np.column_stack([np.ones_like(xc), xc, xc**2])

    def predict_loglog(self, N) -> np.ndarray:
        return self._design(np.log(np.atleast_1d(np.asarray(N, dtype=float)))) @ self.beta_

    def predict(self, N) -> np.ndarray:
        return np.exp(-np.exp(self.predict_loglog(N)))

    def predict_interval(self, N, interval: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(low, high) prediction interval of PU at N from the t interval of F."""
        X0 = self._design(np.log(np.atleast_1d(np.asarray(N, dtype=float))))
        return _pu_band(self, X0 @ self.beta_, X0, self.interval if interval is None else interval)


class InstanceScalingLaw:
    """Per-instance task scaling laws; the task prediction is the mean over instances.

    An instance is fitted where it has a non-zero, non-censored p_hat below 1 on at least
    `min_models` model sizes.  Other instances contribute their p_hat at the largest fitted model
    size (0 for an instance never seen to pass), so the prediction averages over all instances, as
    the task-level PU does.
    """

    def __init__(self, min_models: int = 2):
        self.min_models = min_models

    def fit(self, estimates: pd.DataFrame) -> "InstanceScalingLaw":
        require_columns(estimates, {"instance", "N", "p_hat", "censored"}, "estimates")
        self.laws_: dict = {}
        self.fallback_: dict = {}
        for inst, g in estimates.groupby("instance", sort=True):
            ok = g[(~g["censored"].astype(bool)) & (g["p_hat"] > 0) & (g["p_hat"] < 1)]
            if ok["N"].nunique() >= self.min_models:
                self.laws_[inst] = TaskScalingLaw().fit(ok["N"], ok["p_hat"])
            else:
                self.fallback_[inst] = float(g.sort_values("N")["p_hat"].iloc[-1])
        self.instances_ = sorted(list(self.laws_) + list(self.fallback_), key=str)
        if not self.laws_:
            raise ValueError("no instance has a usable p_hat on enough model sizes for a law")
        return self

    def predict_instances(self, N) -> pd.DataFrame:
        N = np.atleast_1d(np.asarray(N, dtype=float))
        rows = []
        for inst in self.instances_:
            if inst in self.laws_:
                p = self.laws_[inst].predict(N)
            else:
                p = np.full(len(N), self.fallback_[inst])
            rows += [{"instance": inst, "N": n, "p": float(v), "fitted": inst in self.laws_}
                     for n, v in zip(N, p)]
        return pd.DataFrame(rows)

    def predict(self, N) -> np.ndarray:
        df = self.predict_instances(N)
        return df.groupby("N", sort=False)["p"].mean().to_numpy()


def curvature_test(N, pu, level: float = 0.05) -> dict:
    """Classify F(N) = log(-log PU) against log N as linear, accelerated (concave) or sub-scaling.

    A quadratic in log N is compared with the line: the class is set by the sign of the quadratic
    term when that term is significant at `level` (t test) *and* the quadratic has the lower AIC;
    otherwise the law is taken as linear.  Needs at least 4 model sizes.
    """
    N, pu = _valid(N, pu)
    n = len(N)
    out = {"curvature_class": "undetermined", "quadratic_coef": np.nan, "p_value": np.nan,
           "aic_linear": np.nan, "aic_quadratic": np.nan, "n_models": n}
    if n < 4:
        out["evidence"] = f"{n} usable models; the curvature test needs >= 4"
        return out
    x = np.log(N)
    xc = x - x.mean()  # centring keeps the linear and quadratic terms nearly orthogonal
    F = loglog(pu)
    lin = ols(np.column_stack([np.ones(n), xc]), F)
    quad = ols(np.column_stack([np.ones(n), xc, xc**2]), F)
    q, se = float(quad["beta"][2]), float(quad["se"][2])
    tval = q / se if se > 0 else np.inf * np.sign(q)
    p = float(2 * stats.t.sf(abs(tval), quad["dof"])) if np.isfinite(tval) else 0.0
    aic_l, aic_q = _aic(lin["rss"], n, 2), _aic(quad["rss"], n, 3)
    curved = p < level and aic_q < aic_l
    cls = "linear" if not curved else ("accelerated" if q < 0 else "sub-scaling")
    out.update(curvature_class=cls, quadratic_coef=q, p_value=p, aic_linear=float(aic_l),
               aic_quadratic=float(aic_q), linear_coef=lin["beta"].tolist(),
               quadratic_coefs=quad["beta"].tolist(), x_mean=float(x.mean()))
    out["evidence"] = (f"quadratic term {q:+.3g} (t={tval:.2f}, p={p:.2g}); "
                       f"AIC linear {aic_l:.1f} vs quadratic {aic_q:.1f}")
    return out


def _mixture_logpu(theta: np.ndarray, x: np.ndarray) -> np.ndarray:
    u, lc1, a1, lc2, a2 = theta
    w = special.expit(u)
    t1 = -np.exp(lc1 - a1 * x)
    t2 = -np.exp(lc2 - a2 * x)
    return np.logaddexp(np.log(w) + t1, np.log1p(-w) + t2)


def compare_mixture(N, pu, n_starts: int = 3, seed: int = 0) -> dict:
    """Two-component "multiple circuits" mixture sum_j w_j exp(-c_j N^-alpha_j) vs the single law.

    Both are fitted by least squares on log PU (the scale on which tiny pass rates are measured), and
    compared by AICc and BIC with 2 vs 5 parameters (the mixture must win on both).  Needs at least 7 model sizes so that the mixture
    keeps 2 residual degrees of freedom; with fewer the single law is kept and the reason given.
    """
    N, pu = _valid(N, pu)
    n = len(N)
    out = {"preferred": "single", "n_models": n}
    if n < 2:
        out["evidence"] = f"{n} usable models"
        return out
    x = np.log(N)
    y = np.log(pu)
    base = TaskScalingLaw().fit(N, pu)
    single = _fit_single_logpu(x, y, base)
    rss1 = float(single.fun @ single.fun)
    out.update(aic_single=_aic(rss1, n, 2, corrected=True), bic_single=_bic(rss1, n, 2),
               c_single=float(np.exp(single.x[0])), alpha_single=float(single.x[1]))
    if n < 7:
        out["evidence"] = f"{n} usable models; the 5-parameter mixture needs >= 7"
        return out
    best = _fit_mixture_logpu(x, y, _mixture_starts(N, pu, x, base, n_starts, seed))
    rss2 = float(best.fun @ best.fun)
    aic2, bic2 = _aic(rss2, n, 5, corrected=True), _bic(rss2, n, 5)
    u, lc1, a1, lc2, a2 = best.x
    out.update(aic_mixture=aic2, bic_mixture=bic2, weight=float(special.expit(u)),
               c1=float(np.exp(lc1)), alpha1=float(a1), c2=float(np.exp(lc2)), alpha2=float(a2))
    if aic2 < out["aic_single"] and bic2 < out["bic_single"]:
        out["preferred"] = "mixture"
    out["evidence"] = (f"AICc single {out['aic_single']:.1f} vs mixture {aic2:.1f}; "
                       f"BIC single {out['bic_single']:.1f} vs mixture {bic2:.1f}")
    return out


def _fit_single_logpu(x: np.ndarray, y: np.ndarray, base: TaskScalingLaw):
    """Least squares of the single law on log PU, started from the log-log OLS fit `base`."""

    def single_res(th):
        return -np.exp(th[0] - th[1] * x) - y

    return optimize.least_squares(single_res, [base.log_c_, base.alpha_])


def _mixture_starts(N, pu, x, base: TaskScalingLaw, n_starts: int, seed: int) -> list:
    """Starting points of the mixture fit."""
    n = len(N)
    rng = np.random.default_rng(seed)
    order = np.argsort(x)
    starts = []
    # Circuits that dominate different size ranges: start from separate laws for the smaller and
    # the larger models at each split, then a few random perturbations of the single law.
    for k in range(3, n - 2):
        lo, hi = order[:k], order[k:]
        try:
            a, b = TaskScalingLaw().fit(N[lo], pu[lo]), TaskScalingLaw().fit(N[hi], pu[hi])
        except ValueError:
            continue
        starts.append([0.0, a.log_c_, a.alpha_, b.log_c_, b.alpha_])
    for i in range(n_starts):
        jit = rng.normal(scale=[1.0, 1.0, 0.3, 1.0, 0.3])
        starts.append(np.array([0.0, base.log_c_ + 1, base.alpha_ * 1.5, base.log_c_ - 1,
                                base.alpha_ * 0.5]) + jit)
    return starts


def _fit_mixture_logpu(x: np.ndarray, y: np.ndarray, starts: list):
    """The best (lowest cost) bounded least-squares mixture fit on log PU over `starts`."""
    lower, upper = np.array([-20, -50, -5, -50, -5]), np.array([20, 50, 10, 50, 10])
    best = None
    for start in starts:
        start = np.clip(np.asarray(start, dtype=float), lower + 1e-6, upper - 1e-6)
        try:
            res = optimize.least_squares(lambda th: _mixture_logpu(th, x) - y, start,
                                         bounds=(lower, upper))
        except (ValueError, FloatingPointError):
            continue
        if best is None or res.cost < best.cost:
            best = res
    return best
