"""PassUntil as the engine runs it, in rounds, and the estimator that uses every sample it draws.

The engine samples in rounds (`obsscale.passuntil.sampling`): round k gives every unfinished
instance the next `batch_size(k)` attempts, and an instance stops after the first round that
brings its r-th pass (or at K_max).  The negative-binomial estimator (r - 1) / (K - 1) counts the
attempts up to the r-th pass only; the rest of that round is drawn, paid for and logged
(`counted: false`), then ignored.  Near p = 1 that wastes most of the evidence: an instance that
finishes in the first round of 64 attempts is estimated from 2 or 3 of them.

`all_samples_estimate` is the unbiased estimator of minimum variance for the design as run (the
rounds' boundaries and K_max included): the share of the sample paths to the observed endpoint
(n attempts drawn, S passes among them) that begin with a pass, where a path counts only if it
would have run that far (fewer than r passes at every earlier round boundary).  It is the
Rao-Blackwell improvement of "the first attempt passed" (which is unbiased whatever the stopping
rule) on the sufficient statistic (n, S), so it is exactly unbiased, censoring included, and its
variance is at most that of the negative-binomial estimator.  An instance that finished in its
first round gets S / n, the fixed-n proportion of that round.  The path counts are summed in
log space, one dynamic programme over the round boundaries with states 0..r-1 passes.
"""

from __future__ import annotations

import numpy as np
from scipy import special

from obsscale.passuntil.tasks import round_batch


def round_schedule(batch: dict, K_max: int) -> np.ndarray:
    """Cumulative attempts after each round of the engine's geometric batches, capped at K_max."""
    sizes, total, k = [], 0, 0
    while total < K_max:
        b = min(round_batch(batch, k), K_max - total)
        total += b
        sizes.append(total)
        k += 1
    return np.array(sizes)


def _log_comb(n, k):
    n, k = np.broadcast_arrays(np.asarray(n, dtype=float), np.asarray(k, dtype=float))
    ok = (k >= 0) & (k <= n)
    with np.errstate(invalid="ignore"):
        value = special.gammaln(n + 1) - special.gammaln(k + 1) - special.gammaln(n - k + 1)
    return np.where(ok, value, -np.inf)


def _rounds_of(n, cum: np.ndarray) -> np.ndarray:
    """The number of rounds behind `n` drawn attempts (1-based); raises if `n` is no round boundary."""
    n = np.asarray(n, dtype=float)
    j = np.searchsorted(cum, n, side="left")
    bad = (j >= len(cum)) | (cum[np.minimum(j, len(cum) - 1)] != n)
    if np.any(bad):
        raise ValueError(f"{np.asarray(n)[bad].ravel()[0]:g} attempts drawn is not a round boundary of "
                         f"the design (boundaries {cum[:6].tolist()}...)")
    return j + 1


def all_samples_estimate(n, S, r: int, K_max: int, batch: dict) -> np.ndarray:
    """Unbiased minimum-variance p from `n` attempts drawn (whole rounds) with `S` passes among them.

    Elementwise over arrays; the module docstring has the method.
    """
    cum = round_schedule(batch, K_max)
    sizes = np.diff(cum, prepend=0).astype(float)
    n = np.asarray(n, dtype=float)
    S = np.asarray(S, dtype=float)
    J = _rounds_of(n, cum)
    if np.any((S < 0) | (S > n)):
        raise ValueError("passes outside 0..attempts drawn")
    log_t = np.full(n.shape, -np.inf)
    log_g = np.full(n.shape, -np.inf)
    m = np.arange(r, dtype=float)  # passes so far, below r at every earlier boundary
    # Paths through round 1 with m passes: all of them (f), and those that begin with a pass (g).
    f = _log_comb(sizes[0], m) * np.ones(n.shape + (1,))
    g = _log_comb(sizes[0] - 1, m - 1) * np.ones(n.shape + (1,))
    last = J == 1
    log_t[last] = _log_comb(sizes[0], S[last])
    log_g[last] = _log_comb(sizes[0] - 1, S[last] - 1)
    for j in range(1, len(cum)):
        size = sizes[j]
        last = J == j + 1
        if np.any(last):
            tail = _log_comb(size, S[last][:, None] - m[None, :])
            log_t[last] = special.logsumexp(f[last] + tail, axis=-1)
            log_g[last] = special.logsumexp(g[last] + tail, axis=-1)
        if not np.any(J > j + 1):
            break
        step = _log_comb(size, m[None, :] - m[:, None])  # [from m, to m']
        f = special.logsumexp(f[..., :, None] + step, axis=-2)
        g = special.logsumexp(g[..., :, None] + step, axis=-2)
    with np.errstate(invalid="ignore"):
        p = np.exp(log_g - log_t)
    return np.where(np.isfinite(log_g), p, 0.0)


def simulate_rounds(p, r: int, K_max: int, batch: dict, rng) -> tuple[np.ndarray, np.ndarray]:
    """(attempts drawn, passes among them) of the engine's rounds run on true pass rates `p`: whole
    rounds until the first round boundary with at least r passes, or K_max."""
    cum = round_schedule(batch, K_max)
    sizes = np.diff(cum, prepend=0)
    p = np.clip(np.asarray(p, dtype=float), 0.0, 1.0)
    passes = rng.binomial(sizes, p[..., None])
    total = np.cumsum(passes, axis=-1)
    reached = total >= r
    j = np.where(reached.any(axis=-1), reached.argmax(axis=-1), len(cum) - 1)
    S = np.take_along_axis(total, j[..., None], axis=-1)[..., 0]
    return cum[j].astype(float), S.astype(float)
