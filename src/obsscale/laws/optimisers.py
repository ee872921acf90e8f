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
    from scipy import optimize  # imported on first fit: predicting with a frozen law does not need it

    _fix_uninitialised_memory()
    D = design(X)
    y = np.asarray(y, float)

    def residuals(p):
        return predict_design(link, K, np.asarray(p, float), D) - y

    def jac(p):
        return jacobian_design(link, K, np.asarray(p, float), D)

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
