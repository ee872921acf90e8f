"""Held-out evaluation of subset selection on the shipped post-training scores (paper Fig 7 setup),
with a stand-in linear law so that the test checks the plumbing, not the law."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from obsscale.capability.scores import BASE_METRICS, BASE_METRICS_NONGSM
from obsscale.selection.evaluate import (
    GSM8K_TARGETS,
    evaluation_frame,
    geometric_mean,
    plot_selection_curve,
    plot_subset_fits,
    selection_curve,
    subset_test_mse,
)

ROOT = Path(__file__).resolve().parents[1] / "resources" / "obsscaling"
IMPUTATION = {"n_components": 1, "max_iter": 1000, "tol": 1e-6}


class LinearLaw:
    """Least squares on the logit of the target: enough to exercise fit / predict /
    decision_function / h_ of a law without the laws stage."""

    def fit(self, X, y):
        design = np.column_stack([np.ones(len(X)), X])
        logit = np.log((y + 1e-3) / (1 - y + 1e-3))
        self.coef_, *_ = np.linalg.lstsq(design, logit, rcond=None)
        self.h_ = 1.0
        return self

    def decision_function(self, X):
        return np.column_stack([np.ones(len(X)), X]) @ self.coef_

    def predict(self, X):
        return 1 / (1 + np.exp(-self.decision_function(X)))


@pytest.fixture(scope="module")
def frame():
    return evaluation_frame(ROOT / "base_llm_benchmark_eval.csv", ROOT / "base_llm_post_training_eval.csv",
                            ROOT / "families.yaml", BASE_METRICS, list(GSM8K_TARGETS))


def test_subset_fit_uses_only_the_subset_and_the_cutoff_test_set(frame):
    df, _ = frame
    assert len(df) == 77
    subset = ["meta-llama/Llama-2-7b-hf", "huggyllama/llama-7b", "microsoft/phi-2", "microsoft/phi-1_5",
              "mosaicml/mpt-7b", "deepseek-ai/deepseek-coder-1.3b-base"]
    table, preds = subset_test_mse(df, subset, list(GSM8K_TARGETS), BASE_METRICS_NONGSM, LinearLaw, 84.0,
                                   imputation=IMPUTATION, return_predictions=True)
    assert table["n_train"].max() <= len(subset)
    assert set(preds.loc[preds.split == "train", "Model"]) <= set(subset)
    test = preds[preds.split == "test"]
    assert (test["FLOPs (1E21)"].isna() | (test["FLOPs (1E21)"] > 84)).all()
    # the 30 test models of the cutoff, less those that miss the target
    is_test = df["FLOPs (1E21)"].isna() | (df["FLOPs (1E21)"] > 84)
    assert is_test.sum() == 30
    assert table["n_test"].tolist() == [int((is_test & df[t].notna()).sum()) for t in GSM8K_TARGETS]
    for _, row in table.iterrows():
        sub = test[test.target == row.target]
        assert row.mse_test == pytest.approx(np.mean((sub.predicted - sub.observed) ** 2))
    with pytest.raises(ValueError, match="not training models"):
        subset_test_mse(df, subset + ["meta-llama/Llama-2-70b-hf"], list(GSM8K_TARGETS),
                        BASE_METRICS_NONGSM, LinearLaw, 84.0, imputation=IMPUTATION)


def test_selection_curve_reproduces_reference_selections(frame, tmp_path):
    df, families = frame
    curve, details, selections = selection_curve(
        df, families, [4, 8], BASE_METRICS, BASE_METRICS_NONGSM, list(GSM8K_TARGETS), LinearLaw,
        imputation=IMPUTATION, n_random=3, n_jobs=2)
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


def test_subset_fit_figure_uses_llama2_equivalent_compute(frame, tmp_path):
    pytest.importorskip("obsscale.laws.law")
    df, _ = frame
    subset = ["meta-llama/Llama-2-7b-hf", "huggyllama/llama-7b", "microsoft/phi-2", "microsoft/phi-1_5",
              "mosaicml/mpt-7b", "deepseek-ai/deepseek-coder-1.3b-base", "bigcode/starcoder2-3b"]
    _, preds = subset_test_mse(df, subset, list(GSM8K_TARGETS), BASE_METRICS_NONGSM, LinearLaw,
                               84.0, imputation=IMPUTATION, return_predictions=True)
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
    preds.insert(0, "budget", 8)
    plot_subset_fits(preds, tmp_path / "b.png", tmp_path / "b.pdf", tmp_path / "b.csv", "test")
    assert (tmp_path / "b.png").stat().st_size > 0 and (tmp_path / "b.pdf").exists()
    assert len(pd.read_csv(tmp_path / "b.csv")) == len(preds)
