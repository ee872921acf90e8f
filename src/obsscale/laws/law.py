"""The observational scaling law (paper Eq. 6) as a scikit-learn estimator.

    P_m = α + βᵀ S_m,        Ŷ_m = h · σ(P_m) + (1 − h)

S_m are predictors of model m: the first K principal components of its benchmark scores, or a single
compute measure (log10 FLOPs, log10 size).  h ≡ 1 for the plain sigmoid link; the `sigmoid_floor` link
fits the floor 1 − h with h ∈ [0.8, 1] (the paper's `sigmoid-parametric`).

What every law needs beside the estimator has its own module: link functions (`laws.links`), the
optimisers (`laws.optimisers`), the equivalent-compute axis (`laws.reference`), error metrics and the
area under the error curve (`laws.metrics`), bootstrap bands (`laws.bootstrap`).
"""

from __future__ import annotations

import logging

import numpy as np

from obsscale.core.estimator import StatefulEstimator
from obsscale.laws.links import Link, get_link
from obsscale.laws.optimisers import get_optimiser, jacobian, predict_params

log = logging.getLogger(__name__)

# cond(JᵀJ) above which the parameters count as not identifiable (no delta-method covariance).
MAX_CONDITION = 1e14


class ObservationalScalingLaw(StatefulEstimator):
    """Ŷ = h·σ(α + βᵀX) + (1 − h), fitted on the training models only.

    Parameters
    ----------
    link : "sigmoid" | "sigmoid_floor"
    estimator : the optimiser, "least_squares" | "huber"
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

    @classmethod
    def frozen(cls, link: str, estimator: str, params, status: str = "ok") -> "ObservationalScalingLaw":
        """A law with given parameters [α, β, extra] (a preregistered law); nothing is fitted."""
        law = cls(link=link, estimator=estimator)
        law._set_params_vector(np.asarray(params, float), get_link(link))
        law.status_, law.converged_ = status, True
        return law

    def _set_params_vector(self, params: np.ndarray, link: Link) -> None:
        K = len(params) - 1 - link.n_extra
        self.params_ = params
        self.intercept_ = float(params[0])
        self.coef_ = params[1: K + 1].copy()
        self.h_ = link.height(params[K + 1:])
        self.n_features_in_ = K

    def _loss(self, link, K, X, y, p) -> float:
        r = predict_params(link, K, p, X) - y
        if self.estimator == "huber":
            a = np.abs(r)
            d = self.huber_delta
            return float(np.where(a <= d, 0.5 * r**2, d * (a - 0.5 * d)).sum())
        return float(0.5 * (r**2).sum())

    def _starts(self, link: Link, X: np.ndarray) -> list[np.ndarray]:
        """The paper's start (or `init`), then `n_starts − 1` seeded random ones scaled by X's sd."""
        K = X.shape[1]
        paper = np.concatenate([[0.0], np.full(K, 0.03), link.extra_init])
        starts = [np.asarray(self.init, float) if self.init is not None else paper]
        rng = np.random.default_rng(self.random_state)
        sd = X.std(axis=0)
        sd[sd == 0] = 1.0
        for _ in range(max(self.n_starts, 1) - 1):
            starts.append(np.concatenate([[rng.normal(0, 2)], rng.normal(0, 2, K) / sd,
                                          [rng.uniform(*b) for b in link.extra_bounds]]))
        return starts

    def _best_of(self, results: list[dict]) -> dict:
        """The converged start with the lowest loss; later starts must beat it by `start_tol`."""
        best = results[0]
        for r in results[1:]:
            if r["converged"] and (not best["converged"]
                                   or r["loss"] < best["loss"] * (1 - self.start_tol) - 1e-15):
                best = r
        return best

    def fit(self, X, y) -> "ObservationalScalingLaw":
        X, y = _check_xy(X, y)
        link = get_link(self.link)
        solve = get_optimiser(self.estimator)
        K = X.shape[1]
        options = {"huber_delta": self.huber_delta, "max_nfev": self.max_nfev}
        results = []
        for i, s in enumerate(self._starts(link, X)):
            p, ok, msg = solve(link, K, X, y, s, options)
            results.append({"start": i, "params": p, "converged": ok, "message": msg,
                            "loss": self._loss(link, K, X, y, p) if np.isfinite(p).all() else np.inf})
        best = self._best_of(results)
        self.starts_ = [{k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in r.items()}
                        for r in results]
        self._set_params_vector(best["params"], link)
        self.converged_ = bool(best["converged"])
        self.loss_ = float(best["loss"])
        self.best_start_ = int(best["start"])
        self.n_train_ = len(y)
        self.covariance_, cond = _covariance(link, self.params_, X, y)
        self.status_, self.warnings_ = self._diagnose(X, len(results), best["message"], cond)
        for m in self.warnings_:
            log.warning("%s law fit (%s, %s): %s", self.link, self.estimator, f"n={len(y)}", m)
        return self

    def _diagnose(self, X: np.ndarray, n_starts: int, message: str, cond: float) -> tuple[str, list[str]]:
        """Status and warnings: not converged, diverged (index spread beyond the threshold), or
        degenerate (parameters not identifiable)."""
        msgs = []
        status = "ok"
        if not self.converged_:
            status = "not_converged"
            msgs.append(f"optimiser did not converge from any of {n_starts} starts ({message})")
        spread = float(np.std(X @ self.coef_))
        if not np.isfinite(spread) or spread > self.divergence_threshold:
            status = "diverged"
            msgs.append(
                f"diverged: the capability index spreads {spread:.1f} logits over the training models "
                f"(> {self.divergence_threshold}; slopes {np.round(self.coef_, 1).tolist()}): near-separable "
                "training data; the curve is a step, not a law")
        n_par = len(self.params_)
        if self.n_train_ <= n_par or not np.isfinite(self.covariance_).all() or cond >= MAX_CONDITION:
            if status == "ok":
                status = "degenerate"
            msgs.append(f"degenerate: parameters not identifiable (n_train = {self.n_train_}, "
                        f"{n_par} parameters, cond(JᵀJ) = {cond:.3g})")
        return status, msgs

    def _check_fitted(self):
        if not hasattr(self, "params_"):
            raise RuntimeError("this ObservationalScalingLaw is not fitted yet; call fit(X, y) first")

    def decision_function(self, X) -> np.ndarray:
        """The capability index P = α + βᵀX."""
        self._check_fitted()
        return self.intercept_ + as_2d(X) @ self.coef_

    def predict(self, X) -> np.ndarray:
        self._check_fitted()
        return predict_params(get_link(self.link), self.n_features_in_, self.params_, as_2d(X))

    def predict_delta_band(self, X, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
        """Pointwise band Ŷ ± z·√(gᵀΣg), g = ∂Ŷ/∂p (delta method), clipped to [0, 1]."""
        from scipy.special import ndtri

        self._check_fitted()
        X = as_2d(X)
        g = jacobian(get_link(self.link), self.n_features_in_, self.params_, X)
        var = np.einsum("ij,jk,ik->i", g, self.covariance_, g)
        half = ndtri(0.5 + level / 2) * np.sqrt(np.maximum(var, 0))
        yhat = self.predict(X)
        return np.clip(yhat - half, 0, 1), np.clip(yhat + half, 0, 1)


def _covariance(link: Link, params: np.ndarray, X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    """Parameter covariance s²(JᵀJ)⁻¹ at the optimum (delta method) and cond(JᵀJ); a floor at its
    bound is treated as fixed, as the band is conditional on the active constraint."""
    K = X.shape[1]
    n_par = len(params)
    J = jacobian(link, K, params, X)
    free = np.ones(n_par, bool)
    for j, (lo, hi) in enumerate(link.extra_bounds):
        v = params[K + 1 + j]
        if v <= lo + 1e-8 or v >= hi - 1e-8:
            free[K + 1 + j] = False
    resid = predict_params(link, K, params, X) - y
    dof = len(y) - int(free.sum())
    cov = np.full((n_par, n_par), np.nan)
    cond = np.inf
    if dof > 0:
        JtJ = J[:, free].T @ J[:, free]
        cond = np.linalg.cond(JtJ)
        if np.isfinite(cond) and cond < MAX_CONDITION:
            cov[:] = 0.0
            cov[np.ix_(free, free)] = np.linalg.inv(JtJ) * float(resid @ resid) / dof
    return cov, cond


def _check_xy(X, y) -> tuple[np.ndarray, np.ndarray]:
    X = as_2d(X)
    y = np.asarray(y, dtype=float).ravel()
    if len(X) != len(y):
        raise ValueError(f"X has {len(X)} rows but y has {len(y)}")
    finite = np.isfinite(X).all(axis=1) & np.isfinite(y)
    if not finite.all():
        raise ValueError(f"{int((~finite).sum())} rows of X or y are not finite; drop them before fitting")
    return X, y


def format_form(coef, intercept: float, h: float = 1.0, names=("x",), intercept_first: bool = False) -> str:
    """A fitted law printed as the paper prints it: `sigmoid(2.00x − 6.11)`,
    `sigmoid(6.74 PC1 − 3.22 PC2 − 1.37 PC3 − 0.45)`, or with a fitted floor
    `0.93·sigmoid(1.20x − 2.71) + 0.07`.  h is shown only when it is not 1 at the printed precision
    (two decimals), so a floored law whose floor came out at 0 reads like a plain sigmoid.
    A one-letter name is attached to its coefficient (`2.00x`), a longer one is spaced (`6.74 PC1`);
    `intercept_first` puts α in front (the metric-weights form of Table C.1)."""
    terms = [(float(c), str(n).strip()) for c, n in zip(np.atleast_1d(coef), names)]
    parts = []
    if intercept_first:
        parts.append(("", float(intercept), ""))
    parts += [("", c, n) for c, n in terms]
    if not intercept_first:
        parts.append(("", float(intercept), ""))
    text = ""
    for i, (_, value, name) in enumerate(parts):
        number = f"{abs(value):.2f}" + (name if len(name) <= 1 else f" {name}")
        sign = "−" if value < 0 and f"{abs(value):.2f}" != "0.00" else "+"
        text += (("−" if sign == "−" else "") + number) if i == 0 else f" {sign} {number}"
    return wrap_link(f"sigmoid({text})", h)


def wrap_link(inner: str, h: float = 1.0) -> str:
    """`h·inner + (1 − h)`, or `inner` alone when h prints as 1.00."""
    if f"{h:.2f}" == "1.00":
        return inner
    return f"{h:.2f}·{inner} + {1 - h:.2f}"


def as_2d(X) -> np.ndarray:
    X = np.asarray(X, dtype=float)
    return X.reshape(-1, 1) if X.ndim == 1 else X
