"""Held-out evaluation of subset selection on the shipped post-training scores (paper Fig 7 setup):
the fits are the laws stage's (`fit_target` with `train_models=`), here with a plain sigmoid from
one start so that the test stays fast."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from obsscale.capability.scores import BASE_METRICS, BASE_METRICS_NONGSM
from obsscale.figures.selection import plot_selection_curve, plot_subset_fits
from obsscale.laws.fit import fit_target
from obsscale.laws.spec import parse_predictors
from obsscale.selection.heldout import (
    GSM8K_TARGETS,
    evaluation_frame,
    geometric_mean,
    heldout_spec,
    heldout_targets,
    selection_curve,
    subset_curves,
    subset_fits,
    subset_predictions,
    subset_scores,
)

ROOT = Path(__file__).resolve().parents[1] / "resources" / "obsscaling"
IMPUTATION = {"n_components": 1, "max_iter": 1000, "tol": 1e-6}
LAW = {"link": "sigmoid", "estimator": "least_squares", "n_starts": 1}
SUBSET = ["meta-llama/Llama-2-7b-hf", "huggyllama/llama-7b", "microsoft/phi-2", "microsoft/phi-1_5",
          "mosaicml/mpt-7b", "deepseek-ai/deepseek-coder-1.3b-base"]


@pytest.fixture(scope="module")
def spec():
    return heldout_spec(BASE_METRICS_NONGSM, LAW, 84.0, imputation=IMPUTATION)


@pytest.fixture(scope="module")
def targets():
    return heldout_targets(list(GSM8K_TARGETS))


@pytest.fixture(scope="module")
def frame():
    return evaluation_frame(ROOT / "base_llm_benchmark_eval.csv", ROOT / "base_llm_post_training_eval.csv",
                            ROOT / "families.yaml", BASE_METRICS, list(GSM8K_TARGETS))


def test_subset_fit_uses_only_the_subset_and_the_cutoff_test_set(frame, spec, targets):
    df, _ = frame
    assert len(df) == 77
    fits = subset_fits(df, spec, targets, SUBSET)
    table, preds = subset_scores(fits), subset_predictions(fits)
    assert table["n_train"].max() <= len(SUBSET)
    assert set(preds.loc[preds.split == "train", "Model"]) <= set(SUBSET)
    test = preds[preds.split == "test"]
    assert (test["FLOPs (1E21)"].isna() | (test["FLOPs (1E21)"] > 84)).all()
    # the 30 test models of the cutoff, less those that miss the target
    is_test = df["FLOPs (1E21)"].isna() | (df["FLOPs (1E21)"] > 84)
    assert is_test.sum() == 30
    assert table["n_test"].tolist() == [int((is_test & df[t].notna()).sum()) for t in GSM8K_TARGETS]
    for _, row in table.iterrows():
        sub = test[test.target == row.target]
        assert row.mse_test == pytest.approx(np.mean((sub.predicted - sub.observed) ** 2))
    assert preds.groupby("target")["label"].first().to_dict() == GSM8K_TARGETS
    with pytest.raises(ValueError, match="not training models"):
        subset_fits(df, spec, targets, SUBSET + ["meta-llama/Llama-2-70b-hf"])


def test_subset_fit_is_the_experiments_fit_with_its_normalisation(frame, spec):
    """A target with a floor is normalised by its range exactly as in an experiment, and the fit is
    `fit_target`'s with the other training models discarded."""
    df, _ = frame
    column = "gsm8k_5_exact_match,flexible-extract"
    target = heldout_targets([{"column": column, "range": [0.05, 0.9]}])[0]
    (fit,) = subset_fits(df, spec, [target], SUBSET)
    train = df[df["Model"].isin(SUBSET)].set_index("Model")[column]
    observed = subset_predictions([fit]).query("split == 'train'").set_index("Model")["observed"]
    np.testing.assert_allclose(observed, (train.loc[observed.index] - 0.05) / 0.85)
    direct = fit_target(df, spec, target, parse_predictors("PC-1..3"), n_boot=0, train_models=SUBSET,
                        min_train_models=2)
    np.testing.assert_array_equal(fit.law.params_, direct.law.params_)
    assert set(fit.frame.loc[fit.role == "discarded", "Model"]).isdisjoint(SUBSET)
    assert not (fit.frame.loc[fit.role == "discarded", "FLOPs (1E21)"] > 84).any()


def test_selection_curve_reproduces_reference_selections(frame, spec, targets, tmp_path):
    df, families = frame
    curve, details, selections = selection_curve(
        df, families, [4, 8], BASE_METRICS, spec, targets, imputation=IMPUTATION, n_random=3, n_jobs=2)
    best = {s.budget: s for s in selections if s.method == "v-optimal"}
    rand = {s.budget: s for s in selections if s.method == "random" and s.rank == 0}
    # the reference evaluation notebook's printed selections (pool: 45 models, 14 families)
    assert best[4].families == ("Phi", "MPT", "StarCoder2") and round(best[4].objective, 2) == -26.76
    assert best[8].families == ("Llama-2", "Llama", "Phi", "MPT", "DeepSeek-Coder")
    assert round(best[8].objective, 2) == -8.84
    assert rand[4].families == ("Gemma", "Phi", "StarCoder2") and round(rand[4].objective, 2) == -39.90
    assert rand[8].families == ("Gemma", "Phi", "StarCoder", "StarCoder2") and rand[8].n_models == 7

    assert set(curve.method) == {"v-optimal", "random", "all"}
    assert len(curve) == 6
    per = details.groupby(["method", "budget", "rank"])["mse_test"].agg(geometric_mean)
    for budget in (4, 8):
        v = curve[(curve.method == "v-optimal") & (curve.budget == budget)].iloc[0]
        assert v.mse == pytest.approx(per[("v-optimal", budget, 0)])
        r = curve[(curve.method == "random") & (curve.budget == budget)].iloc[0]
        samples = per.loc["random", budget].to_numpy()
        assert r.n_subsets == 3 and r.mse == pytest.approx(samples.mean())
        assert r.band_lo <= np.exp(np.log(samples).mean()) <= r.band_hi
    all_rows = details[details.method == "all"]
    assert (all_rows.n_models == 47).all() and len(all_rows) == 3

    plot_selection_curve(curve, tmp_path / "a.png", tmp_path / "a.pdf", tmp_path / "a.csv")
    assert pd.read_csv(tmp_path / "a.csv").shape[0] == len(curve)


def test_subset_fit_figure_uses_llama2_equivalent_compute(frame, spec, targets, tmp_path):
    df, _ = frame
    fits = subset_fits(df, spec, targets, SUBSET + ["bigcode/starcoder2-3b"])
    preds, curves = subset_predictions(fits), subset_curves(fits)
    ref = preds[preds["Model Family"] == "Llama-2"]
    # the reference line is fitted on the selected (7B) and the test (13B, 70B) Llama-2 models
    assert set(ref["Model"]) == {"meta-llama/Llama-2-7b-hf", "meta-llama/Llama-2-13b-hf", "meta-llama/Llama-2-70b-hf"}
    assert preds.groupby("target")["ref_slope"].nunique().eq(1).all()
    assert (preds["ref_slope"] > 0).all()
    # the equivalent axis is the index mapped through each target's reference line
    np.testing.assert_allclose(preds["equivalent_log10_flops"] * preds["ref_slope"] + preds["ref_intercept"],
                               preds["index"])
    # and the Llama-2 models land near their own log10 FLOPs
    np.testing.assert_allclose(ref["equivalent_log10_flops"], np.log10(ref["FLOPs (1E21)"]), atol=0.5)
    # the drawn curve is the law: on the equivalent axis it passes through each model's prediction
    for target, part in preds.groupby("target"):
        line = curves[curves.target == target]
        assert line.x.min() <= part.equivalent_log10_flops.min() and line.x.max() >= part.equivalent_log10_flops.max()
        np.testing.assert_allclose(np.interp(part.equivalent_log10_flops, line.x, line.y_hat), part.predicted, atol=2e-3)
    preds.insert(0, "budget", 8)
    curves.insert(0, "budget", 8)
    plot_subset_fits(preds, curves, tmp_path / "b.png", tmp_path / "b.pdf", tmp_path / "b.csv", "test")
    assert (tmp_path / "b.png").stat().st_size > 0 and (tmp_path / "b.pdf").exists()
    assert len(pd.read_csv(tmp_path / "b.csv")) == len(preds)
