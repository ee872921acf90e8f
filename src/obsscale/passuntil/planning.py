"""Planning a PassUntil design from a pilot round: what r and K_max will cost and resolve.

From the first round of a run (every instance's fixed-n pilot: n0 attempts, c0 passes), the
instances' pass rates are modelled as logit-normal across the task (fitted by marginal likelihood,
so instances that never passed in the pilot still count), and candidate designs (r, K_max) are
simulated on tasks drawn from that population, counting every drawn sample (the round schedule's
overshoot after the r-th pass included).  For each design `plan` reports:

- `censored_fraction`: expected share of instances stopped at K_max before their r-th pass;
- `resolution_floor`: the pass rate at which half of the runs are censored (below it the design
  does not resolve p; about r / K_max);
- `expected_samples`: expected samples drawn per task;
- `rel_error_q90`: the 90th percentile of |PU estimate / PU - 1| of the task-level PU;
- `meets_target`: whether that is within `target` (default 0.2).

The rule this supports (docs/passuntil.md): take the cheapest design that meets the target, with
K_max at least a few times r / p for the smallest pass rates the law must see.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import optimize, special, stats

from obsscale.passuntil.estimators import point_estimates, simulate_design
from obsscale.passuntil.rounds import round_schedule

DEFAULT_R = (2, 3, 4, 6)
DEFAULT_K_MAX = (1_000, 10_000, 100_000)


def fit_population(n0, c0) -> tuple[float, float]:
    """(mu, sigma) of logit p across instances from pilot counts, by marginal likelihood."""
    n0 = np.asarray(n0, dtype=float)
    c0 = np.asarray(c0, dtype=float)
    keep = n0 > 0
    n0, c0 = n0[keep], c0[keep]
    if len(n0) == 0:
        raise ValueError("the pilot has no sampled instance")
    nodes, weights = np.polynomial.hermite_e.hermegauss(40)
    weights = weights / weights.sum()

    def nll(theta):
        mu, log_sigma = theta
        p = special.expit(mu + np.exp(log_sigma) * nodes)  # (nodes,)
        like = stats.binom.pmf(c0[:, None], n0[:, None], p[None, :]) @ weights
        return -np.log(np.maximum(like, 1e-300)).sum()

    pooled = (c0.sum() + 0.5) / (n0.sum() + 1.0)
    res = optimize.minimize(nll, [special.logit(pooled), np.log(1.5)], method="Nelder-Mead",
                            options={"xatol": 1e-4, "fatol": 1e-6, "maxiter": 2000})
    return float(res.x[0]), float(np.exp(np.clip(res.x[1], -5, 2.5)))


def drawn_samples(K, s, r: int, K_max: int, batch: dict) -> np.ndarray:
    """Samples the engine draws for counted attempts K: whole rounds until the r-th pass (the
    rest of that round is drawn but not counted), K_max when censored."""
    cum = round_schedule(batch, K_max)
    K = np.asarray(K, dtype=float)
    done = np.asarray(s) >= r
    idx = np.minimum(np.searchsorted(cum, K, side="left"), len(cum) - 1)
    return np.where(done, cum[idx], K_max).astype(float)


def resolution_floor(r: int, K_max: int) -> float:
    """The pass rate at which P(fewer than r passes in K_max attempts) = 1/2."""
    return float(optimize.brentq(lambda p: stats.binom.cdf(r - 1, K_max, p) - 0.5, 1e-12, 1 - 1e-12))


def plan(n0, c0, r_values=DEFAULT_R, K_max_values=DEFAULT_K_MAX, batch: dict | None = None,
         target: float = 0.2, replicates: int = 400, seed: int = 0) -> pd.DataFrame:
    """One row per candidate design (module docstring), for a task of len(n0) instances."""
    batch = batch or {"initial": 16, "growth": 2.0, "max": 1024}
    mu, sigma = fit_population(n0, c0)
    n = len(np.asarray(n0))
    rng = np.random.default_rng(seed)
    p = special.expit(mu + sigma * rng.standard_normal((replicates, n)))
    truth = p.mean(axis=1)
    rows = []
    for K_max in K_max_values:
        for r in r_values:
            K, s = simulate_design(p, int(r), int(K_max), rng)
            est = point_estimates(K, s, int(r), int(K_max)).mean(axis=1)
            err = np.quantile(np.abs(est / truth - 1), 0.9)
            rows.append({
                "r": int(r), "K_max": int(K_max), "logit_mu": mu, "logit_sigma": sigma,
                "censored_fraction": float((s < r).mean()),
                "resolution_floor": resolution_floor(int(r), int(K_max)),
                "expected_samples": float(drawn_samples(K, s, int(r), int(K_max), batch).sum(axis=1).mean()),
                "rel_error_q90": float(err), "meets_target": bool(err <= target),
            })
    return pd.DataFrame(rows)
