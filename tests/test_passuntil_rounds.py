"""The `all_samples` estimator (every sample the engine's rounds draw) and the curved task law.

The estimator is checked against brute-force path counting, for unbiasedness by simulation of the
engine's rounds (censoring included), for a lower variance than the negative-binomial estimator,
for its task interval's coverage, and end to end on a real sample log; the law stage's
`task_curved` row on series that do and do not bend."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from obsscale.passuntil.estimators import (
    all_samples_interval,
    instance_estimates,
    point_estimates,
    simulate_design,
)
from obsscale.passuntil.rounds import (
    all_samples_estimate,
    round_schedule,
    simulate_rounds,
)

BATCH = {"initial": 4, "growth": 2, "max": 16}
K_MAX = 60  # rounds end at 4, 12, 28, 44, 60


def _brute_force(n: int, S: int, r: int) -> float:
    """Share of the admissible 0/1 paths to (n attempts, S passes) that begin with a pass."""
    cum = round_schedule(BATCH, K_MAX)
    earlier = cum[: list(cum).index(n)]
    total = first = 0
    for bits in itertools.product((0, 1), repeat=n):
        if sum(bits) == S and all(sum(bits[:b]) < r for b in earlier):
            total += 1
            first += bits[0]
    return first / total


@pytest.mark.parametrize("n,S,r", [(4, 2, 2), (4, 1, 2), (4, 4, 2), (12, 2, 2), (12, 3, 2), (12, 7, 2),
                                   (12, 5, 3), (4, 3, 3)])
def test_estimate_is_the_share_of_paths_that_begin_with_a_pass(n, S, r):
    assert all_samples_estimate(np.array([n]), np.array([S]), r, K_MAX, BATCH)[0] == pytest.approx(
        _brute_force(n, S, r), rel=1e-9)


def test_one_round_gives_the_fixed_n_proportion_and_a_censored_instance_s_over_k_max():
    est = all_samples_estimate(np.array([4, 4, 60, 60]), np.array([3, 2, 1, 0]), 2, K_MAX, BATCH)
    assert est == pytest.approx([0.75, 0.5, 1 / 60, 0.0])


@pytest.mark.parametrize("p", [0.003, 0.05, 0.4, 0.93, 0.995])
@pytest.mark.parametrize("r", [2, 3])
def test_unbiased_over_the_rounds_and_never_worse_than_the_negative_binomial(p, r):
    rng = np.random.default_rng(int(p * 1e4) + r)
    n, S = simulate_rounds(np.full(200_000, p), r, K_MAX, BATCH, rng)
    est = all_samples_estimate(n, S, r, K_MAX, BATCH)
    se = est.std() / np.sqrt(len(est))
    assert abs(est.mean() - p) < 4 * se + 1e-12, (est.mean(), p, se)
    K, s = simulate_design(np.full(200_000, p), r, K_MAX, rng)
    assert est.var() <= point_estimates(K, s, r, K_MAX).var() * 1.02


@pytest.mark.parametrize("p", [0.9, 0.99])
def test_near_one_a_first_round_of_64_is_worth_far_more_than_its_first_passes(p):
    """The ladder's design: 64 attempts in the first round, of which (r-1)/(K-1) reads 2 or 3."""
    batch, k_max = {"initial": 64, "growth": 2, "max": 1024}, 4000
    rng = np.random.default_rng(7)
    n, S = simulate_rounds(np.full(100_000, p), 2, k_max, batch, rng)
    K, s = simulate_design(np.full(100_000, p), 2, k_max, rng)
    assert all_samples_estimate(n, S, 2, k_max, batch).var() < 0.1 * point_estimates(K, s, 2, k_max).var()


def test_simulated_rounds_stop_at_the_first_boundary_with_r_passes():
    rng = np.random.default_rng(0)
    n, S = simulate_rounds(np.array([1.0, 0.0, 0.5]), 2, K_MAX, BATCH, rng)
    assert list(n[:2]) == [4, 60] and list(S[:2]) == [4, 0]
    assert n[2] in round_schedule(BATCH, K_MAX)


@pytest.mark.parametrize("n,log10_p", [(6, (-2, -0.8)), (50, (-2, -0.8)), (50, (-0.1, -0.003))])
def test_task_interval_covers(n, log10_p):
    rng = np.random.default_rng(n)
    hits, reps = 0, 200 if n < 20 else 100
    for _ in range(reps):
        p = 10 ** rng.uniform(*log10_p, n)
        drawn, S = simulate_rounds(p, 2, K_MAX, BATCH, rng)
        lo, hi = all_samples_interval(drawn, S, 2, K_MAX, BATCH, level=0.9, n_boot=1000,
                                      seed=int(rng.integers(1 << 30)))
        hits += lo <= p.mean() <= hi
    assert hits / reps >= 0.85, hits / reps


def test_counts_off_the_rounds_are_refused_naming_the_instance():
    records = pd.DataFrame({"instance": ["a", "b"], "K": [3, 5], "passes": [2, 2], "drawn": [4, 7],
                            "passes_drawn": [2, 3]})
    with pytest.raises(ValueError, match=r"instance 'b': drawn=7.*round"):
        instance_estimates(records, r=2, K_max=K_MAX, estimator="all_samples", batch=BATCH)
    with pytest.raises(ValueError, match="batch schedule"):
        instance_estimates(records, r=2, K_max=K_MAX, estimator="all_samples")


def test_a_real_log_estimated_from_every_drawn_sample(tmp_path):
    """The engine's log: drawn / passes_drawn are all its samples, the estimate their path share."""
    from test_passuntil_sampling import simulated_task

    from obsscale.passuntil.backends import SimulatedBackend
    from obsscale.passuntil.sampling import counts_from_log, pass_until

    task = simulated_task([0.9, 0.3, 0.05, 0.0], r=2, K_max=K_MAX, batch=dict(BATCH))
    pass_until(task, SimulatedBackend(), "m", tmp_path / "log.jsonl", progress=False)
    counts = counts_from_log(tmp_path / "log.jsonl").set_index("instance")
    assert (counts["drawn"] >= counts["K"]).all() and (counts["passes_drawn"] >= counts["passes"]).all()
    assert set(counts["drawn"]) <= set(round_schedule(BATCH, K_MAX))
    est = instance_estimates(counts.reset_index(), r=2, K_max=K_MAX, estimator="all_samples",
                             batch=BATCH).set_index("instance")
    assert counts.loc["i3", "drawn"] == K_MAX and est.loc["i3", "p_hat"] == 0 and est.loc["i3", "censored"]
    for inst in ("i0", "i1", "i2"):
        n, S = int(counts.loc[inst, "drawn"]), int(counts.loc[inst, "passes_drawn"])
        expected = (_brute_force(n, S, 2) if n <= 12 else
                    all_samples_estimate(np.array([n]), np.array([S]), 2, K_MAX, BATCH)[0])
        assert est.loc[inst, "p_hat"] == pytest.approx(expected)
