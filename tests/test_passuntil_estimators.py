"""Spec §6 statistical checks of the PassUntil estimators and laws (simulation, no models)."""

import warnings

import numpy as np
import pandas as pd
import pytest

from obsscale.passuntil.estimators import (
    bootstrap_mean,
    clopper_pearson,
    instance_estimates,
    pass_at_k,
    point_estimates,
    simulate_design,
    task_pass_until,
    unbiased_pass_rate,
)
from obsscale.passuntil.laws import (
    InstanceScalingLaw,
    TaskScalingLaw,
    compare_mixture,
    curvature_test,
    loglog,
)


def negbin_attempts(rng, r, p, size):
    # numpy counts failures before the r-th success; attempts = failures + r.
    return rng.negative_binomial(r, p, size=size) + r


@pytest.mark.parametrize("p,r", [(1e-2, 2), (1e-3, 3), (0.2, 2)])
def test_unbiased_estimator_is_unbiased(p, r):
    rng = np.random.default_rng(1)
    K = negbin_attempts(rng, r, p, 200_000)
    est = unbiased_pass_rate(r, K)
    se = est.std() / np.sqrt(len(est))
    assert abs(est.mean() - p) < 4 * se
    # The MLE is biased upward at the same settings, by more than Monte-Carlo error.
    mle = unbiased_pass_rate(r, K, "mle")
    assert mle.mean() - p > 4 * mle.std() / np.sqrt(len(mle))


@pytest.mark.parametrize("p", [1e-2, 1e-3])
def test_mle_bias_at_r1_matches_closed_form(p):
    rng = np.random.default_rng(2)
    K = negbin_attempts(rng, 1, p, 400_000)
    with pytest.warns(UserWarning, match="r = 1"):
        est = unbiased_pass_rate(1, K)
    expected = -p * np.log(p) / (1 - p)
    se = est.std() / np.sqrt(len(est))
    assert abs(est.mean() - expected) < 4 * se
    assert est.mean() / p > 4  # a 4.6x (p=1e-2) to 6.9x (p=1e-3) overestimate


def test_censored_instances_are_flagged_with_exact_upper_bound():
    recs = pd.DataFrame({"instance": ["a", "b", "c"], "K": [50, 100, 100], "passes": [2, 1, 0]})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        est = instance_estimates(recs, r=2, K_max=100).set_index("instance")
    assert not est.loc["a", "censored"] and est.loc["a", "p_hat"] == pytest.approx(1 / 49)
    assert est.loc["b", "censored"] and est.loc["b", "p_hat"] == pytest.approx(0.01)
    assert est.loc["c", "censored"] and est.loc["c", "p_hat"] == 0
    # Zero passes in 100: the exact 95 % upper bound is 1 - 0.025^(1/100).
    assert est.loc["c", "high"] == pytest.approx(1 - 0.025 ** (1 / 100))
    assert est.loc["c", "low"] == 0


def test_inconsistent_counts_are_rejected_naming_the_instance():
    recs = pd.DataFrame({"instance": ["ok", "bad"], "K": [10, 5], "passes": [2, 6]})
    with pytest.raises(ValueError, match="bad"):
        instance_estimates(recs, r=2, K_max=100)


def test_clopper_pearson_covers_the_truth():
    rng = np.random.default_rng(3)
    p, n = 0.05, 200
    s = rng.binomial(n, p, size=4000)
    low, high = clopper_pearson(s, np.full_like(s, n), 0.9)
    cover = ((low <= p) & (p <= high)).mean()
    assert cover >= 0.88  # exact intervals are conservative


def test_task_level_pu_and_bootstrap():
    est = pd.DataFrame({"p_hat": [0.1, 0.2, 0.3, 0.0], "censored": [False, False, False, True]})
    out = task_pass_until(est, n_boot=2000, level=0.9)
    assert out["PU"] == pytest.approx(0.15)
    assert out["PU_low"] < 0.15 < out["PU_high"]
    assert out["censored"] == 1
    assert bootstrap_mean([0.5] * 5) == (0.5, 0.5)


def test_pass_at_k_matches_definition():
    from math import comb

    for n, c, k in [(10, 3, 1), (20, 5, 5), (16, 0, 4), (8, 7, 2)]:
        assert pass_at_k(n, c, k) == pytest.approx(1 - comb(n - c, k) / comb(n, k))
    assert pass_at_k(10, 3, 1) == pytest.approx(0.3)
    with pytest.raises(ValueError):
        pass_at_k(3, 1, 5)


# ---- laws -------------------------------------------------------------------------------------

N_SERIES = np.logspace(7, 10, 8)


def law_pu(N, log_c, alpha):
    return np.exp(-np.exp(log_c - alpha * np.log(N)))


def test_law_recovers_c_and_alpha():
    rng = np.random.default_rng(4)
    log_c, alpha = 10.3, 0.5
    F = log_c - alpha * np.log(N_SERIES) + rng.normal(scale=0.01, size=len(N_SERIES))
    law = TaskScalingLaw().fit(N_SERIES, np.exp(-np.exp(F)))
    assert law.alpha_ == pytest.approx(alpha, rel=0.03)
    assert law.c_ == pytest.approx(np.exp(log_c), rel=0.05)
    assert law.r2_ > 0.99
    # Held out: fit the 6 smallest, predict the 2 largest within the prediction interval.
    small = TaskScalingLaw(interval=0.95).fit(N_SERIES[:6], np.exp(-np.exp(F[:6])))
    lo, hi = small.predict_interval(N_SERIES[6:])
    truth = law_pu(N_SERIES[6:], log_c, alpha)
    assert np.all(lo <= truth) and np.all(truth <= hi)
    assert np.allclose(small.predict(N_SERIES[6:]), truth, rtol=0.05)


def test_law_needs_two_usable_models():
    with pytest.raises(ValueError, match=">= 2"):
        TaskScalingLaw().fit([1e7, 1e8, 1e9], [0.0, 0.0, 0.3])


@pytest.mark.parametrize("q,expected", [(0.0, "linear"), (-0.25, "accelerated"), (0.25, "sub-scaling")])
def test_curvature_classes(q, expected):
    # Over repeated noisy curves: a straight F is called linear about (1 - level) of the time, and a
    # clearly bent one gets its class almost always.
    x = np.log(N_SERIES)
    xc = x - x.mean()
    classes = []
    for seed in range(60):
        rng = np.random.default_rng(seed)
        F = 1.0 - 0.6 * xc + q * xc**2 + rng.normal(scale=0.03, size=len(x))
        out = curvature_test(N_SERIES, np.exp(-np.exp(F)), level=0.05)
        classes.append(out["curvature_class"])
        if out["curvature_class"] == expected and expected != "linear":
            assert np.sign(out["quadratic_coef"]) == np.sign(q) and out["p_value"] < 0.05
    assert classes.count(expected) / len(classes) >= 0.9, classes


def test_curvature_needs_four_models():
    out = curvature_test(N_SERIES[:3], law_pu(N_SERIES[:3], 10.3, 0.5))
    assert out["curvature_class"] == "undetermined"


def test_mixture_preferred_only_for_a_mixture():
    N = np.logspace(7, 10, 10)
    # A slow circuit holding small models near 1e-4 and a steep one taking over at the largest.
    mix = 0.5 * law_pu(N, 4.6, 0.15) + 0.5 * law_pu(N, 35.8, 1.6)
    out = compare_mixture(N, mix * np.exp(np.random.default_rng(0).normal(scale=0.01, size=len(N))))
    assert out["preferred"] == "mixture", out["evidence"]
    assert out["aic_mixture"] < out["aic_single"] and out["bic_mixture"] < out["bic_single"]
    # The same mixture bends F downward: accelerated emergence.
    assert curvature_test(N, mix)["curvature_class"] == "accelerated"
    # Noisy data from one law rarely prefer the mixture (AICc and BIC must both agree).
    false_alarm = 0
    for seed in range(10):
        rng = np.random.default_rng(seed)
        single = law_pu(N, 10.3, 0.5) * np.exp(rng.normal(scale=0.05, size=len(N)))
        false_alarm += compare_mixture(N, single)["preferred"] == "mixture"
    assert false_alarm <= 2


def test_instance_level_law_averages_instance_predictions():
    rows = []
    params = {"i1": (10.0, 0.5), "i2": (12.0, 0.6), "i3": (8.0, 0.3)}
    for inst, (lc, a) in params.items():
        for n in N_SERIES[:6]:
            rows.append({"instance": inst, "N": n, "p_hat": law_pu(n, lc, a), "censored": False})
    rows.append({"instance": "never", "N": 1e7, "p_hat": 0.0, "censored": True})
    est = pd.DataFrame(rows)
    law = InstanceScalingLaw().fit(est)
    assert set(law.laws_) == {"i1", "i2", "i3"} and law.fallback_ == {"never": 0.0}
    target = N_SERIES[-1]
    expected = np.mean([law_pu(target, *params[i]) for i in params] + [0.0])
    assert law.predict([target])[0] == pytest.approx(expected, rel=1e-6)
    assert np.all(np.isfinite(loglog([0.5])))


def _law_inputs(tmp_path, N, pu, r=2, K_max=4000):
    """estimates.csv and summary.csv of a series whose task PU is `pu` (8 instances per model)."""
    rng = np.random.default_rng(0)
    est, summ = [], []
    for j, (n, p) in enumerate(zip(N, pu)):
        K, s = simulate_design(np.full(8, p), r, K_max, rng)
        est += [{"model": f"m{j}", "N": n, "instance": f"i{i}", "K": K[i], "passes": s[i], "censored": s[i] < r,
                 "p_hat": v, "r": r, "K_max": K_max} for i, v in enumerate(point_estimates(K, s, r, K_max))]
        summ.append({"model": f"m{j}", "N": n, "PU": p, "PU_low": p * 0.95, "PU_high": min(p * 1.05, 1)})
    paths = tmp_path / "estimates.csv", tmp_path / "summary.csv", tmp_path / "law.csv"
    pd.DataFrame(est).to_csv(paths[0], index=False)
    pd.DataFrame(summ).to_csv(paths[1], index=False)
    return [str(p) for p in paths]


@pytest.mark.parametrize("bend", [0.0, -0.25])
def test_law_stage_selects_the_quadratic_only_where_the_fitted_models_bend(tmp_path, bend):
    """An accelerated series (concave F) is predicted by the quadratic, whose interval holds the
    held-out value where the straight law's misses; a straight series keeps the law."""
    from obsscale.stages.passuntil import LAW_COLUMNS, fit_laws

    x = np.log(N_SERIES)
    xc = x - x[:-1].mean()
    F = 0.3 - 0.8 * xc + bend * xc**2 + np.random.default_rng(1).normal(scale=0.02, size=len(x))
    curves_csv = tmp_path / "curves.csv"
    out = fit_laws(*_law_inputs(tmp_path, N_SERIES, np.exp(-np.exp(F))), holdout=1, mixture=False,
                   curves_csv=str(curves_csv))
    assert list(out.columns) == LAW_COLUMNS
    rows = out.set_index("level")
    task, curved = rows.loc["task"], rows.loc["task_curved"]
    assert curved["n_models"] == 7 and "on the fitted models" in curved["evidence"]
    assert rows["selected"].sum() == 1
    actual = task["actual"]
    if bend == 0.0:
        assert curved["curvature_class"] == "linear" and task["selected"] and not curved["selected"]
        assert task["predicted_low"] <= actual <= task["predicted_high"]
    else:
        assert curved["curvature_class"] == "accelerated" and curved["selected"] and not task["selected"]
        assert curved["predicted_low"] <= actual <= curved["predicted_high"]
        assert not task["predicted_low"] <= actual <= task["predicted_high"]
        assert curved["predicted"] == pytest.approx(actual, rel=0.05)
    # The figures draw the quadratic from law_curves.csv: its value at the target is the prediction.
    quad = pd.read_csv(curves_csv).query("kind == 'task_curved'")
    assert quad["value"].iloc[-1] == pytest.approx(curved["predicted"], rel=1e-9)
