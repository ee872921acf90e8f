"""The observational scaling law: estimator, registries, splits, equivalent compute, bands, and the
paper's calibration numbers (spec §9) at library level."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.base import clone

from obsscale.capability import scores as D
from obsscale.core.errors import UnknownNameError
from obsscale.laws.bootstrap import bootstrap_law
from obsscale.laws.experiments import run_experiment
from obsscale.laws.fit import fit_target
from obsscale.laws.frame import experiment_frame
from obsscale.laws.law import ObservationalScalingLaw
from obsscale.laws.links import get_link
from obsscale.laws.metrics import area_under_error
from obsscale.laws.optimisers import get_optimiser
from obsscale.laws.prereg import freeze_experiment, preregistered_forms, score_frozen
from obsscale.laws.reference import ReferenceLine
from obsscale.laws.spec import parse_predictors, resolve_experiment
from obsscale.laws.splits import SplitError, split_models

ROOT = Path(__file__).resolve().parents[1]
CONFIG = yaml.safe_load((ROOT / "config/config.yaml").read_text())


def _run(name: str, **overrides):
    block = dict(CONFIG["experiments"][name], **overrides)
    spec = resolve_experiment(name, block, CONFIG)
    return spec, run_experiment(spec, ROOT / CONFIG["scores"][spec["data"]["scores"]]["path"],
                                  ROOT / CONFIG["families"], ROOT / spec["data"]["targets_csv"])


@pytest.fixture(scope="module")
def word_unscramble():
    spec, result = _run("emergent", targets=[CONFIG["experiments"]["emergent"]["targets"][0]],
                        predictors=["PC-1..3", "log10_flops"], n_boot=0, sweeps={})
    return result["fits_table"].set_index("predictors")


# --- calibration (spec §9) -----------------------------------------------------------------------


def test_word_unscramble_pc_law_matches_paper(word_unscramble):
    row = word_unscramble.loc["PC-1..3"]
    assert row["eq_family"] == "Llama-2"
    assert round(row["eq_slope"], 2) == 2.00
    assert round(row["eq_intercept"], 2) == -6.11
    assert f"{row['mse_train']:.1e}" == "1.3e-04"
    assert f"{row['mse_test']:.1e}" == "4.0e-03"
    assert row["form"] == "sigmoid(2.00x − 6.11)"
    # 47 − 3 (no word-unscramble score) train models; the 3 Llama-2 models define the axis.
    assert row["eq_fit_models"].count(";") == 2
    # Table C.1 signs under the sklearn ≥ 1.5 convention: 6.74 PC1 − 3.2x PC2 − 1.3x PC3.
    assert round(row["beta_1"], 2) == 6.74 and row["beta_2"] < 0 and row["beta_3"] < 0


def test_word_unscramble_flops_baseline_matches_paper_in_log10(word_unscramble):
    row = word_unscramble.loc["log10_flops"]
    # The paper prints per-ln-unit slopes: sigmoid(1.04 x − 7.03); ours are per log10 unit.
    assert round(row["eq_slope"] / math.log(10), 2) == 1.04
    assert round(row["eq_intercept"], 2) == -7.03
    assert round(row["eq_slope"], 1) == 2.4
    assert f"{row['mse_train']:.1e}" == "2.6e-04"
    assert f"{row['mse_test']:.1e}" == "1.3e-02"
    # NaN-FLOPs test models (Jamba, Qwen1.5-110B) are dropped for the baseline only.
    assert row["n_test"] < word_unscramble.loc["PC-1..3", "n_test"]
    assert row["n_test_common"] == row["n_test"]


def test_default_split_by_reference_model_name():
    fams = D.load_families(ROOT / CONFIG["families"])
    df = D.read_score_table(ROOT / CONFIG["scores"]["base"]["path"], CONFIG["scores"]["base"]["metrics"], fams)
    df = D.select_models(df, fams)
    train = split_models(df, {"by": "cutoff", "column": D.FLOPS, "reference_model": "meta-llama/Llama-2-7b-hf"})
    assert (len(df), int(train.sum()), int((~train).sum())) == (77, 47, 30)
    # Mistral / Mixtral have no FLOPs: always test.
    assert not train[df[D.FAMILY].isin(["Mistral", "Mixtral"])].any()
    with pytest.raises(SplitError, match="did you mean 'meta-llama/Llama-2-7b-hf'"):
        split_models(df, {"by": "cutoff", "column": D.FLOPS, "reference_model": "meta-llama/Llama-2-7b"})


def test_rank_and_random_splits():
    df = pd.DataFrame({"Model": list("abcde"), "c": [1.0, np.nan, 3.0, 5.0, 2.0]})
    train = split_models(df, {"by": "rank", "column": "c", "test_count": 2})
    assert list(df.loc[~train, "Model"]) == ["b", "d"]  # missing first, then the largest
    y = np.array([0.1, 0.9, 0.3, 0.2, 0.5])
    train = split_models(df, {"by": "rank", "column": "y", "test_fraction": 0.4}, y)
    assert set(df.loc[~train, "Model"]) == {"b", "e"}
    r1 = split_models(df, {"by": "random", "test_fraction": 0.4, "seed": 3})
    r2 = split_models(df, {"by": "random", "test_fraction": 0.4, "seed": 3})
    assert r1.equals(r2) and int((~r1).sum()) == 2


# --- the estimator -------------------------------------------------------------------------------


def _synthetic(n=60, seed=0, h=1.0, beta=(2.0, -1.0), alpha=-1.0, noise=0.02):
    rng = np.random.default_rng(seed)
    X = rng.normal(0, 1, (n, len(beta)))
    p = alpha + X @ np.asarray(beta)
    y = h / (1 + np.exp(-p)) + (1 - h) + rng.normal(0, noise, n)
    return X, y


def test_recovers_a_known_law():
    X, y = _synthetic(noise=0.005)
    law = ObservationalScalingLaw().fit(X, y)
    assert law.status_ == "ok" and law.converged_ and law.h_ == 1.0
    np.testing.assert_allclose(law.coef_, [2.0, -1.0], atol=0.1)
    assert abs(law.intercept_ + 1.0) < 0.1
    assert np.max(np.abs(law.predict(X) - y)) < 0.03


@pytest.mark.parametrize("estimator", ["least_squares", "huber"])
def test_floor_link_recovers_h(estimator):
    X, y = _synthetic(n=120, h=0.9, noise=0.003)
    law = ObservationalScalingLaw(link="sigmoid_floor", estimator=estimator).fit(X, y)
    assert 0.8 <= law.h_ <= 1.0
    assert abs(law.h_ - 0.9) < 0.02
    np.testing.assert_allclose(law.coef_, [2.0, -1.0], atol=0.15)


def test_paper_start_is_first_and_ties_keep_it():
    X, y = _synthetic()
    law = ObservationalScalingLaw(n_starts=5).fit(X, y)
    single = ObservationalScalingLaw(n_starts=1).fit(X, y)
    np.testing.assert_allclose(law.starts_[0]["params"], single.params_)
    assert len(law.starts_) == 5
    assert law.best_start_ == 0  # every start reaches the same optimum: the paper's is kept
    np.testing.assert_allclose(law.params_, single.params_)


def test_separable_data_is_flagged_diverged(caplog):
    x = np.linspace(-1, 1, 30)
    y = (x > 0).astype(float)
    with caplog.at_level(logging.WARNING):
        law = ObservationalScalingLaw(n_starts=1).fit(x, y)
    assert law.status_ in ("diverged", "degenerate")
    assert law.warnings_ and any("diverged" in r.message or "degenerate" in r.message for r in caplog.records)


def test_registries_suggest_names():
    with pytest.raises(UnknownNameError, match="did you mean 'sigmoid_floor'"):
        get_link("sigmoid_flor")
    with pytest.raises(UnknownNameError, match="did you mean 'huber'"):
        get_optimiser("hubber")
    with pytest.raises(UnknownNameError, match="link function"):
        ObservationalScalingLaw(link="sigmod").fit(np.zeros((5, 1)), np.linspace(0, 1, 5))


def test_predict_never_refits_and_clone_is_unfitted():
    X, y = _synthetic()
    law = ObservationalScalingLaw().fit(X, y)
    before = law.params_.copy()
    law.predict(X[:5] * 10)
    np.testing.assert_array_equal(law.params_, before)
    assert not hasattr(clone(law), "params_")
    with pytest.raises(RuntimeError, match="not fitted"):
        ObservationalScalingLaw().predict(X)


def test_reference_line_and_equivalent_compute():
    lx = np.array([1.0, 2.0, 3.0])
    P = 2.0 * lx - 6.0
    ref = ReferenceLine.fit("Fam", P, lx, ["a", "b", "c"])
    assert (round(ref.slope, 6), round(ref.intercept, 6), round(ref.r2, 6)) == (2.0, -6.0, 1.0)
    np.testing.assert_allclose(ref.equivalent_log10_flops(P), lx)
    with pytest.raises(ValueError, match="at least 2"):
        ReferenceLine.fit("Fam", P[:1], lx[:1], ["a"])


def test_area_under_error_is_trapezoidal_in_ratio_order():
    assert area_under_error([0.6, 0.4, 0.2], [1.0, 1.0, 1.0]) == pytest.approx(0.4)
    assert area_under_error([0.2, 0.6], [0.0, 2.0]) == pytest.approx(0.4)


# --- uncertainty ---------------------------------------------------------------------------------


def test_bootstrap_band_covers_the_true_law():
    """Over datasets drawn from a known law, the 95 % band of the fitted curve must contain the
    true curve about 95 % of the time (percentile bootstrap: somewhat below nominal at small n)."""
    x_eval = np.array([[-1.0], [0.0], [1.0]])
    truth = 1 / (1 + np.exp(-(0.5 + 2.0 * x_eval[:, 0])))
    hits, n_sets = np.zeros(3), 40
    for seed in range(n_sets):
        rng = np.random.default_rng(1000 + seed)
        x = rng.uniform(-2, 2, 40)
        y = 1 / (1 + np.exp(-(0.5 + 2.0 * x))) + rng.normal(0, 0.05, 40)
        law = ObservationalScalingLaw(n_starts=1).fit(x, y)
        lo, hi = bootstrap_law(law, x, y, n_boot=100, random_state=seed).band(x_eval)
        hits += (lo <= truth) & (truth <= hi)
        assert np.all(hi - lo < 0.2)  # informative, not trivially wide
    coverage = hits / n_sets
    assert np.all(coverage >= 0.8), coverage
    assert coverage.mean() <= 1.0


def test_delta_method_agrees_with_bootstrap_on_a_well_identified_law():
    rng = np.random.default_rng(7)
    x = rng.uniform(-2, 2, 200)
    y = 1 / (1 + np.exp(-(0.5 + 2.0 * x))) + rng.normal(0, 0.05, 200)
    law = ObservationalScalingLaw(n_starts=1).fit(x, y)
    grid = np.linspace(-1.5, 1.5, 7)
    blo, bhi = bootstrap_law(law, x, y, n_boot=200).band(grid)
    dlo, dhi = law.predict_delta_band(grid)
    np.testing.assert_allclose(dhi - dlo, bhi - blo, rtol=0.35, atol=0.005)


# --- experiments, preregistration ----------------------------------------------------------------


def test_frozen_law_scores_new_models_unchanged(tmp_path):
    spec, result = _run("emergent", targets=[CONFIG["experiments"]["emergent"]["targets"][0]],
                        predictors=["PC-1..3"], n_boot=0, sweeps={})
    doc = freeze_experiment(spec, result, ROOT / "resources/obsscaling/base_llm_benchmark_eval.csv",
                              ROOT / spec["data"]["targets_csv"], ROOT / CONFIG["families"])
    assert doc["obsscale_version"] and len(doc["data_sha256"]) == 64 and doc["frozen"]
    scored = score_frozen(doc, ROOT / "resources/obsscaling/base_llm_benchmark_eval.csv",
                            ROOT / spec["data"]["targets_csv"], ROOT / CONFIG["families"])
    preds = result["predictions"].set_index("Model")
    assert scored["preregistered"].sum() == (preds["role"] == "preregistered").sum()
    for _, r in scored.iterrows():
        np.testing.assert_allclose(r["y_hat"], preds.loc[r["Model"], "y_hat"], rtol=1e-9)
    table = preregistered_forms([doc])
    row = table.iloc[0]
    assert row["form_equivalent_flops"] == "sigmoid(2.00x − 6.11)"
    assert row["form_pcs"].startswith("sigmoid(6.74 PC1 − 3.2")
    # Metric weights reproduce the capability index: P = metric_intercept + Σ w·B.
    f = result["fits"][("word_unscramble", "PC-1..3")]
    B = f.space.impute(f.frame).to_numpy()
    w = np.array([row[f"weight_{m}"] for m in spec["metrics"]])
    np.testing.assert_allclose(row["metric_intercept"] + B @ w, f.law.decision_function(f.X), atol=1e-8)


def test_unknown_names_in_config_blocks():
    good = CONFIG["experiments"]["emergent"]
    cases = [
        (dict(good, link="sigmoid_flor"), "experiments.x.link.*did you mean 'sigmoid_floor'"),
        (dict(good, estimator="ols"), "experiments.x.estimator"),
        (dict(good, predictors=["PC-1..3", "log_flops"]), r"experiments.x.predictors\[1\].*did you mean 'log10_flops'"),
        (dict(good, split={"by": "cutof"}), "experiments.x.split.*did you mean 'cutoff'"),
        (dict(good, data=dict(good["data"], scores="bse")), "experiments.x.data.scores.*did you mean 'base'"),
        (dict(good, targets=[{"column": "c", "range": [1, 0]}]), r"experiments.x.targets\[0\].range"),
        (dict(good, targets=[]), "experiments.x.targets"),
    ]
    for block, pattern in cases:
        with pytest.raises(D.ConfigError, match=pattern):
            resolve_experiment("x", block, CONFIG)


def test_arithmetic_cutoff_21_diverges_and_is_flagged():
    """Spec §5.3: 3-digit subtraction with cutoff 21.0 (not 21.6) is near-separable and the
    reference code's fit silently diverges; here it is flagged."""
    block = dict(CONFIG["experiments"]["emergent_arithmetic"],
                 targets=[CONFIG["experiments"]["emergent_arithmetic"]["targets"][0]],
                 predictors=["PC-1..3"], n_boot=0, n_starts=1,
                 split={"by": "cutoff", "column": D.FLOPS, "threshold": 21.0})
    spec, result = _run("emergent_arithmetic", **block)
    row = result["fits_table"].iloc[0]
    assert row["status"] in ("diverged", "degenerate"), row[["beta_1", "beta_2", "beta_3"]]
    assert row["warning"]
    _, ok = _run("emergent_arithmetic", **dict(block, split={"by": "cutoff", "column": D.FLOPS, "threshold": 21.6}))
    assert ok["fits_table"].iloc[0]["status"] == "ok"


def test_training_subset_discards_other_training_models():
    spec = resolve_experiment("emergent", dict(CONFIG["experiments"]["emergent"], n_boot=0, sweeps={}), CONFIG)
    frame = experiment_frame(spec, ROOT / CONFIG["scores"]["base"]["path"], D.load_families(ROOT / CONFIG["families"]),
                               ROOT / spec["data"]["targets_csv"])
    full = fit_target(frame, spec, spec["targets"][0], parse_predictors("PC-1..3"), n_boot=0)
    keep = full.frame.loc[full.role == "train", "Model"].tolist()[:20]
    sub = fit_target(frame, spec, spec["targets"][0], parse_predictors("PC-1..3"), n_boot=0, train_models=keep)
    assert (sub.role == "train").sum() == 20
    assert (sub.role == "discarded").sum() == (full.role == "train").sum() - 20
    assert ((sub.role == "test") == (full.role == "test")).all()
