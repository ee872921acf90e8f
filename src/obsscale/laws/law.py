"""The observational scaling law (paper Eq. 6) as a scikit-learn style estimator.

    P_m = α + βᵀ S_m,        Ŷ_m = h · σ(P_m) + (1 − h)

S_m are predictors of model m: the first K principal components of its benchmark scores, or a single
compute measure (log10 FLOPs, log10 size).  h ≡ 1 for the plain sigmoid link; the `sigmoid_floor` link
fits the floor 1 − h with h ∈ [0.8, 1] (the paper's `sigmoid-parametric`).

Besides the estimator this module holds what every law needs: link functions and estimators as
registries by name, the equivalent-compute axis (paper Eq. 7–8), error metrics, area under the error
curve of cutoff sweeps, and 95 % bands (bootstrap over training models, delta method as a check).
"""

from __future__ import annotations

import copy
import logging
import warnings
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from scipy import optimize
from scipy.special import expit

from obsscale.core.errors import UnknownNameError  # noqa: F401  (re-exported)
from obsscale.core.registry import Registry

log = logging.getLogger(__name__)




# ---------------------------------------------------------------------------------------------------
# Link functions: map the capability index P (and extra parameters) to the predicted target.


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


# ---------------------------------------------------------------------------------------------------
# Estimators: how the parameters are found from a start.  Each returns (params, converged, message).


def _design(X: np.ndarray) -> np.ndarray:
    D = np.empty((len(X), X.shape[1] + 1))
    D[:, 0] = 1.0
    D[:, 1:] = X
    return D


def _predict_design(link: Link, K: int, params: np.ndarray, D: np.ndarray) -> np.ndarray:
    return link.function(D @ params[: K + 1], params[K + 1:])


def _jacobian_design(link: Link, K: int, params: np.ndarray, D: np.ndarray) -> np.ndarray:
    p = D @ params[: K + 1]
    e = params[K + 1:]
    J = D * link.d_index(p, e)[:, None]
    return np.hstack([J, link.d_extra(p, e)]) if link.n_extra else J


def _predict_params(link: Link, K: int, params: np.ndarray, X: np.ndarray) -> np.ndarray:
    return _predict_design(link, K, params, _design(X))


def _jacobian(link: Link, K: int, params: np.ndarray, X: np.ndarray) -> np.ndarray:
    return _jacobian_design(link, K, params, _design(X))


_M_PERTURB = -6  # glibc mallopt(3) parameter: fill freshly allocated and freed memory with a byte
_malloc_fixed = False


def _fix_uninitialised_memory() -> None:
    """Make memory from malloc() hold a fixed byte instead of what was there before.

    scipy's MINPACK wrapper (lmder) lets a fit depend on work memory it has not written yet: the
    same data gave different optima from one call to the next in degenerate fits (measured with
    scipy 1.17).  With glibc's M_PERTURB set, that memory always holds the same byte, and a fit is
    a function of its data.  A no-op where the C library has no mallopt."""
    global _malloc_fixed
    if _malloc_fixed:
        return
    _malloc_fixed = True
    try:
        import ctypes

        ctypes.CDLL(None).mallopt(_M_PERTURB, 0xA5)
    except (OSError, AttributeError):
        pass


def _least_squares(link, K, X, y, start, options):
    """Nonlinear least squares, as scipy `curve_fit` does it: Levenberg–Marquardt (MINPACK's lmder)
    when unbounded (plain sigmoid), trust-region reflective when the floor is bounded, with the
    analytic Jacobian and curve_fit's defaults.  The solvers are called directly (curve_fit's
    memoisation of the first evaluation made repeated fits of the same data differ, in degenerate
    fits by up to 40 %), the Jacobian is passed in MINPACK's column layout, and uninitialised work
    memory is pinned (`_fix_uninitialised_memory`): the same data give the same bytes."""
    _fix_uninitialised_memory()
    D = _design(X)
    y = np.asarray(y, float)

    def residuals(p):
        return _predict_design(link, K, np.asarray(p, float), D) - y

    def jac(p):
        return _jacobian_design(link, K, np.asarray(p, float), D)

    def jac_columns(p):  # MINPACK's own layout: one row per parameter
        return np.ascontiguousarray(jac(p).T)

    max_nfev = options.get("max_nfev", 10000)
    start = np.asarray(start, float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            if link.n_extra:
                lo = [-np.inf] * (K + 1) + [b[0] for b in link.extra_bounds]
                hi = [np.inf] * (K + 1) + [b[1] for b in link.extra_bounds]
                res = optimize.least_squares(residuals, start, jac=jac, bounds=(lo, hi), method="trf",
                                             max_nfev=max_nfev)
                if not res.success:
                    return start, False, f"Optimal parameters not found: {res.message}"
                return np.asarray(res.x, float), True, "ok"
            popt, _, _, msg, ier = optimize.leastsq(residuals, start, Dfun=jac_columns, col_deriv=True,
                                                    full_output=True, maxfev=max_nfev)
        except (RuntimeError, ValueError, np.linalg.LinAlgError) as exc:
            return start, False, str(exc)
    if ier not in (1, 2, 3, 4):
        return start, False, f"Optimal parameters not found: {msg}"
    return np.asarray(popt, float), True, "ok"


def _huber(link, K, X, y, start, options):
    """Σ Huber_δ(Ŷ − Y).  scipy's `least_squares` with loss="huber" and f_scale=δ minimises exactly
    this sum (½r² inside δ, δ(|r| − δ/2) outside), by trust-region steps with the analytic Jacobian;
    the paper's code reached the same optimum with L-BFGS-B, an order of magnitude slower."""
    delta = float(options.get("huber_delta", 1.0))
    D = _design(X)
    lo = [-np.inf] * (K + 1) + [b[0] for b in link.extra_bounds]
    hi = [np.inf] * (K + 1) + [b[1] for b in link.extra_bounds]
    start = np.clip(np.asarray(start, float), lo, hi)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            res = optimize.least_squares(
                lambda p: _predict_design(link, K, p, D) - y, start,
                jac=lambda p: _jacobian_design(link, K, p, D), bounds=(lo, hi), method="trf",
                loss="huber", f_scale=delta, max_nfev=options.get("max_nfev", 10000))
        except (ValueError, np.linalg.LinAlgError) as exc:
            return start, False, str(exc)
    return np.asarray(res.x, float), bool(res.success), str(res.message)


# The optimisers a law can be fitted with (config key `estimator`).
OPTIMISERS: Registry[Callable] = Registry("estimator")
OPTIMISERS.register("least_squares", _least_squares)
OPTIMISERS.register("huber", _huber)


def get_estimator(name: str) -> Callable:
    return OPTIMISERS.get(name)


# ---------------------------------------------------------------------------------------------------


class LawFitWarning(UserWarning):
    """A fit that diverged, did not converge or is not identifiable."""


class ObservationalScalingLaw:
    """Ŷ = h·σ(α + βᵀX) + (1 − h), fitted on the training models only.

    Parameters
    ----------
    link : "sigmoid" | "sigmoid_floor"
    estimator : "least_squares" | "huber"
    huber_delta : δ of the Huber loss (the paper uses 1.0, which on [0, 1] targets equals least squares)
    n_starts : number of starts.  The first is the paper's (α = 0, β = 0.03, b = 0), so the paper's
        local optima are reproduced; the others are random (seeded) around it.  The start with the
        lowest loss wins; a later start wins only if it lowers the loss by more than `start_tol`
        (relative), so ties keep the paper's optimum.
    divergence_threshold : a fit whose capability index spreads over the training models by more
        than this many logits (sd of βᵀX) is flagged "diverged": near-separable training data drive
        the slopes to infinity and the sigmoid becomes a step.  Sound fits of the paper's tasks
        spread by 0.1–9 logits; the diverged 3-digit-subtraction fit at cutoff 21.0 by 16.
    init : explicit start (overrides the paper start), e.g. a bootstrap refit from the full fit.

    Attributes after fit: intercept_ (α), coef_ (β), h_, params_, converged_, status_ ("ok",
    "diverged", "degenerate", "not_converged"), warnings_ (list of messages), loss_, n_train_,
    covariance_ (parameter covariance for the delta method, NaN when not identifiable), starts_.
    """

    def __init__(self, link: str = "sigmoid", estimator: str = "least_squares", huber_delta: float = 1.0,
                 n_starts: int = 4, start_tol: float = 1e-6, divergence_threshold: float = 10.0,
                 max_nfev: int = 10000, random_state: int = 0, init: np.ndarray | None = None):
        self.link = link
        self.estimator = estimator
        self.huber_delta = huber_delta
        self.n_starts = n_starts
        self.start_tol = start_tol
        self.divergence_threshold = divergence_threshold
        self.max_nfev = max_nfev
        self.random_state = random_state
        self.init = init

    # sklearn-style parameter access, so `clone` works without sklearn's base class
    def get_params(self, deep: bool = True) -> dict:
        return {k: getattr(self, k) for k in ("link", "estimator", "huber_delta", "n_starts", "start_tol",
                                               "divergence_threshold", "max_nfev", "random_state", "init")}

    def set_params(self, **params) -> "ObservationalScalingLaw":
        for k, v in params.items():
            if k not in self.get_params():
                raise ValueError(f"unknown parameter '{k}'")
            setattr(self, k, v)
        return self

    def _loss(self, link, K, X, y, p) -> float:
        r = _predict_params(link, K, p, X) - y
        if self.estimator == "huber":
            a = np.abs(r)
            d = self.huber_delta
            return float(np.where(a <= d, 0.5 * r**2, d * (a - 0.5 * d)).sum())
        return float(0.5 * (r**2).sum())

    def fit(self, X, y) -> "ObservationalScalingLaw":
        X = _as_2d(X)
        y = np.asarray(y, dtype=float).ravel()
        if len(X) != len(y):
            raise ValueError(f"X has {len(X)} rows but y has {len(y)}")
        finite = np.isfinite(X).all(axis=1) & np.isfinite(y)
        if not finite.all():
            raise ValueError(f"{int((~finite).sum())} rows of X or y are not finite; drop them before fitting")
        link = get_link(self.link)
        solve = get_estimator(self.estimator)
        K = X.shape[1]
        n_par = K + 1 + link.n_extra
        options = {"huber_delta": self.huber_delta, "max_nfev": self.max_nfev}

        paper = np.concatenate([[0.0], np.full(K, 0.03), link.extra_init])
        starts = [np.asarray(self.init, float) if self.init is not None else paper]
        rng = np.random.default_rng(self.random_state)
        sd = X.std(axis=0)
        sd[sd == 0] = 1.0
        for _ in range(max(self.n_starts, 1) - 1):
            s = np.concatenate([[rng.normal(0, 2)], rng.normal(0, 2, K) / sd,
                                [rng.uniform(*b) for b in link.extra_bounds]])
            starts.append(s)

        results = []
        for i, s in enumerate(starts):
            p, ok, msg = solve(link, K, X, y, s, options)
            results.append({"start": i, "params": p, "converged": ok, "message": msg,
                            "loss": self._loss(link, K, X, y, p) if np.isfinite(p).all() else np.inf})
        best = results[0]
        for r in results[1:]:
            if r["converged"] and (not best["converged"]
                                   or r["loss"] < best["loss"] * (1 - self.start_tol) - 1e-15):
                best = r
        self.starts_ = [{k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in r.items()}
                        for r in results]
        self.params_ = best["params"]
        self.intercept_ = float(self.params_[0])
        self.coef_ = self.params_[1: K + 1].copy()
        self.h_ = link.height(self.params_[K + 1:])
        self.converged_ = bool(best["converged"])
        self.loss_ = float(best["loss"])
        self.best_start_ = int(best["start"])
        self.n_train_ = len(y)
        self.n_features_in_ = K
        self._x_sd = sd

        # Parameter covariance s²(JᵀJ)⁻¹ at the optimum (delta method); a floor at its bound is
        # treated as fixed, as the band is conditional on the active constraint.
        J = _jacobian(link, K, self.params_, X)
        free = np.ones(n_par, bool)
        for j, (lo, hi) in enumerate(link.extra_bounds):
            v = self.params_[K + 1 + j]
            if v <= lo + 1e-8 or v >= hi - 1e-8:
                free[K + 1 + j] = False
        resid = _predict_params(link, K, self.params_, X) - y
        dof = len(y) - int(free.sum())
        cov = np.full((n_par, n_par), np.nan)
        cond = np.inf
        if dof > 0:
            JtJ = J[:, free].T @ J[:, free]
            cond = np.linalg.cond(JtJ)
            if np.isfinite(cond) and cond < 1e14:
                sub = np.linalg.inv(JtJ) * float(resid @ resid) / dof
                cov[:] = 0.0
                cov[np.ix_(free, free)] = sub
        self.covariance_ = cov

        msgs = []
        status = "ok"
        if not self.converged_:
            status = "not_converged"
            msgs.append(f"optimiser did not converge from any of {len(starts)} starts ({best['message']})")
        spread = float(np.std(X @ self.coef_))
        if not np.isfinite(spread) or spread > self.divergence_threshold:
            status = "diverged"
            msgs.append(
                f"diverged: the capability index spreads {spread:.1f} logits over the training models "
                f"(> {self.divergence_threshold}; slopes {np.round(self.coef_, 1).tolist()}): near-separable "
                "training data; the curve is a step, not a law")
        if len(y) <= n_par or not np.isfinite(cov).all() or cond >= 1e14:
            if status == "ok":
                status = "degenerate"
            msgs.append(f"degenerate: parameters not identifiable (n_train = {len(y)}, "
                        f"{n_par} parameters, cond(JᵀJ) = {cond:.3g})")
        self.status_ = status
        self.warnings_ = msgs
        for m in msgs:
            log.warning("%s law fit (%s, %s): %s", self.link, self.estimator, f"n={len(y)}", m)
        return self

    def _check_fitted(self):
        if not hasattr(self, "params_"):
            raise RuntimeError("this ObservationalScalingLaw is not fitted yet; call fit(X, y) first")

    def decision_function(self, X) -> np.ndarray:
        """The capability index P = α + βᵀX."""
        self._check_fitted()
        return self.intercept_ + _as_2d(X) @ self.coef_

    def predict(self, X) -> np.ndarray:
        self._check_fitted()
        X = _as_2d(X)
        link = get_link(self.link)
        return _predict_params(link, self.n_features_in_, self.params_, X)

    def predict_delta_band(self, X, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
        """Pointwise band Ŷ ± z·√(gᵀΣg), g = ∂Ŷ/∂p (delta method), clipped to [0, 1]."""
        from scipy.special import ndtri

        self._check_fitted()
        X = _as_2d(X)
        link = get_link(self.link)
        g = _jacobian(link, self.n_features_in_, self.params_, X)
        var = np.einsum("ij,jk,ik->i", g, self.covariance_, g)
        half = ndtri(0.5 + level / 2) * np.sqrt(np.maximum(var, 0))
        yhat = self.predict(X)
        return np.clip(yhat - half, 0, 1), np.clip(yhat + half, 0, 1)

    def describe(self, x_name: str = "x") -> str:
        """The fitted form, e.g. `0.95·sigmoid(2.00 PC1 − 1.10) + 0.05`."""
        self._check_fitted()
        names = [f"{x_name}{i + 1}" for i in range(self.n_features_in_)] if self.n_features_in_ > 1 else [x_name]
        return format_form(self.coef_, self.intercept_, self.h_, names)


def format_form(coef, intercept: float, h: float = 1.0, names=("x",)) -> str:
    terms = ""
    for i, (c, n) in enumerate(zip(np.atleast_1d(coef), names)):
        sign = "−" if c < 0 else ("+" if i else "")
        terms += f"{' ' if i else ''}{sign}{' ' if i else ''}{abs(c):.2f}{n}" if i else f"{'−' if c < 0 else ''}{abs(c):.2f}{n}"
    terms += f" {'−' if intercept < 0 else '+'} {abs(intercept):.2f}"
    if abs(h - 1) < 5e-4:
        return f"sigmoid({terms})"
    return f"{h:.2f}·sigmoid({terms}) + {1 - h:.2f}"


def _as_2d(X) -> np.ndarray:
    X = np.asarray(X, dtype=float)
    return X.reshape(-1, 1) if X.ndim == 1 else X


def clone(law: ObservationalScalingLaw, **overrides) -> ObservationalScalingLaw:
    params = copy.deepcopy(law.get_params())
    params.update(overrides)
    return ObservationalScalingLaw(**params)


# ---------------------------------------------------------------------------------------------------
# Equivalent compute (paper Eq. 7–8)


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
        w, b = np.polyfit(x[ok], index[ok], 1)
        pred = w * x[ok] + b
        ss = ((index[ok] - index[ok].mean()) ** 2).sum()
        r2 = 1 - ((index[ok] - pred) ** 2).sum() / ss if ss > 0 else 1.0
        return cls(family, float(w), float(b), float(r2), models)

    def equivalent_log10_flops(self, index) -> np.ndarray:
        return (np.asarray(index, float) - self.intercept) / self.slope


# ---------------------------------------------------------------------------------------------------
# Metrics


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


# ---------------------------------------------------------------------------------------------------
# Uncertainty


@dataclass
class BootstrapBand:
    """Refits of a law on training models resampled with replacement.

    params[i] is the i-th refit's parameter vector (rows of failed refits are NaN)."""

    params: np.ndarray
    link: str
    n_features: int
    level: float

    def predictions(self, X) -> np.ndarray:
        X = _as_2d(X)
        link = get_link(self.link)
        out = np.full((len(self.params), len(X)), np.nan)
        for i, p in enumerate(self.params):
            if np.isfinite(p).all():
                out[i] = _predict_params(link, self.n_features, p, X)
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
    X = _as_2d(X)
    y = np.asarray(y, float)
    rng = np.random.default_rng(random_state)
    link = get_link(law.link)
    solve = get_estimator(law.estimator)
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
