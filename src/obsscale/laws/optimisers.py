"""How a law's parameters are found from a start (config key `estimator`): nonlinear least squares
and the Huber loss, with the analytic Jacobian of the link; a registry by name.  Each optimiser
returns (params, converged, message)."""

from __future__ import annotations

import warnings
from typing import Callable

import numpy as np

from obsscale.core.registry import Registry
from obsscale.laws.links import Link


# Parameters are [α, β_1..β_K, extra...]; the design matrix is [1, X].
def design(X: np.ndarray) -> np.ndarray:
    D = np.empty((len(X), X.shape[1] + 1))
    D[:, 0] = 1.0
    D[:, 1:] = X
    return D


def predict_design(link: Link, K: int, params: np.ndarray, D: np.ndarray) -> np.ndarray:
    return link.function(D @ params[: K + 1], params[K + 1:])


def jacobian_design(link: Link, K: int, params: np.ndarray, D: np.ndarray) -> np.ndarray:
    p = D @ params[: K + 1]
    e = params[K + 1:]
    J = D * link.d_index(p, e)[:, None]
    return np.hstack([J, link.d_extra(p, e)]) if link.n_extra else J


def predict_params(link: Link, K: int, params: np.ndarray, X: np.ndarray) -> np.ndarray:
    return predict_design(link, K, params, design(X))


def jacobian(link: Link, K: int, params: np.ndarray, X: np.ndarray) -> np.ndarray:
    return jacobian_design(link, K, params, design(X))


def _least_squares(link, K, X, y, start, options):
    """Nonlinear least squares, as scipy `curve_fit`: Levenberg–Marquardt when unbounded (plain
    sigmoid), trust-region reflective when the floor is bounded.  The Jacobian is analytic."""
    from scipy import optimize  # imported on first fit: predicting with a frozen law does not need it

    D = design(X)

    def f(_, *p):
        return predict_design(link, K, np.asarray(p), D)

    def jac(_, *p):
        return jacobian_design(link, K, np.asarray(p), D)

    kwargs = {"maxfev": options.get("max_nfev", 10000)}
    if link.n_extra:
        lo = [-np.inf] * (K + 1) + [b[0] for b in link.extra_bounds]
        hi = [np.inf] * (K + 1) + [b[1] for b in link.extra_bounds]
        kwargs = {"bounds": (lo, hi), "max_nfev": options.get("max_nfev", 10000)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            popt, _ = optimize.curve_fit(f, np.zeros(len(y)), y, p0=start, jac=jac, **kwargs)
        except (RuntimeError, ValueError) as exc:
            return np.asarray(start, float), False, str(exc)
    return np.asarray(popt, float), True, "ok"


def _huber(link, K, X, y, start, options):
    """Σ Huber_δ(Ŷ − Y).  scipy's `least_squares` with loss="huber" and f_scale=δ minimises exactly
    this sum (½r² inside δ, δ(|r| − δ/2) outside), by trust-region steps with the analytic Jacobian;
    the paper's code reached the same optimum with L-BFGS-B, an order of magnitude slower."""
    from scipy import optimize  # imported on first fit: predicting with a frozen law does not need it

    delta = float(options.get("huber_delta", 1.0))
    D = design(X)
    lo = [-np.inf] * (K + 1) + [b[0] for b in link.extra_bounds]
    hi = [np.inf] * (K + 1) + [b[1] for b in link.extra_bounds]
    start = np.clip(np.asarray(start, float), lo, hi)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            res = optimize.least_squares(
                lambda p: predict_design(link, K, p, D) - y, start,
                jac=lambda p: jacobian_design(link, K, p, D), bounds=(lo, hi), method="trf",
                loss="huber", f_scale=delta, max_nfev=options.get("max_nfev", 10000))
        except (ValueError, np.linalg.LinAlgError) as exc:
            return start, False, str(exc)
    return np.asarray(res.x, float), bool(res.success), str(res.message)


# The optimisers a law can be fitted with (config key `estimator`).
OPTIMISERS: Registry[Callable] = Registry("estimator")
OPTIMISERS.register("least_squares", _least_squares)
OPTIMISERS.register("huber", _huber)


def get_optimiser(name: str) -> Callable:
    return OPTIMISERS.get(name)
