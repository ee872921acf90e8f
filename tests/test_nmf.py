"""NMF of the benchmark matrix (Fig C.19): the estimator, its errors, and the stage's tables from
the shipped scores."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from obsscale.capability.nmf import BenchmarkNMF, NMFError, reconstruction_curve
from obsscale.core.errors import InputError

ROOT = Path(__file__).resolve().parents[1]
CONFIG = yaml.safe_load((ROOT / "config/config.yaml").read_text())


def synthetic(n=40, k=3, m=6, seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    W, H = rng.uniform(0, 1, (n, k)), rng.uniform(0, 1, (k, m))
    return pd.DataFrame(W @ H, index=[f"m{i}" for i in range(n)], columns=[f"b{j}" for j in range(m)])


def test_exact_rank_is_recovered_and_normalised():
    B = synthetic()
    nmf = BenchmarkNMF(n_components=3, tol=1e-8, max_iter=5000).fit(B)
    assert nmf.relative_err_ < 1e-3
    H, W = nmf.components_, nmf.weights_
    assert list(H.index) == ["NMF-1", "NMF-2", "NMF-3"] and list(H.columns) == list(B.columns)
    assert np.allclose(np.linalg.norm(H.to_numpy(), axis=1), 1.0)
    assert (H.to_numpy() >= 0).all() and (W.to_numpy() >= 0).all()
    share = [np.linalg.norm(np.outer(W[c], H.loc[c])) for c in H.index]
    assert share == sorted(share, reverse=True)
    # transform with H fixed gives back the fitted weights
    assert np.allclose(nmf.transform(B).to_numpy(), W.to_numpy(), atol=1e-3)


def test_rank_one_is_the_leading_singular_pair_and_error_falls_with_k():
    B = synthetic(k=4, m=8, seed=1)
    s = np.linalg.svd(B.to_numpy(), compute_uv=False)
    one = BenchmarkNMF(n_components=1).fit(B)
    assert one.reconstruction_err_ == pytest.approx(np.sqrt((s[1:] ** 2).sum()), rel=1e-9)
    curve = reconstruction_curve(B, range(1, 6))
    assert list(curve["k"]) == [1, 2, 3, 4, 5]
    assert (np.diff(curve["frobenius_error"]) < 1e-9).all()
    assert curve["relative_error"].iloc[3] < 1e-2  # rank 4 is exact


@pytest.mark.parametrize("value, pattern", [(np.nan, "missing cell.*'m3'.*'b2'"), (-0.1, "negative.*'m3'.*'b2'")])
def test_bad_matrix_is_one_clear_error(value, pattern):
    B = synthetic()
    B.iloc[3, 2] = value
    with pytest.raises(NMFError, match=pattern) as info:
        BenchmarkNMF().fit(B)
    assert isinstance(info.value, InputError)


def test_stage_tables_from_the_shipped_scores(tmp_path):
    from obsscale.stages.nmf import write_nmf
    from obsscale.stages.pca import write_capability_space

    cs = CONFIG["capability_space"]
    pca = {k: tmp_path / f"{k}.csv" for k in ("evr", "loadings", "scores", "imputed")}
    write_capability_space(ROOT / CONFIG["scores"]["base"]["path"], ROOT / CONFIG["families"], cs["sets"]["base8"],
                           cs["n_components"], cs["imputation"], pca["evr"], pca["loadings"], pca["scores"],
                           pca["imputed"], tmp_path / "pca.json")
    out = {k: tmp_path / f"nmf_{k}.csv" for k in ("components", "weights", "laws", "curve")}
    nmf = write_nmf(pca["imputed"], pca["scores"], CONFIG["nmf"], CONFIG["nmf"]["k_max"], out["components"],
                    out["weights"], out["laws"], out["curve"], tmp_path / "nmf.json")
    k = CONFIG["nmf"]["n_components"]
    components = pd.read_csv(out["components"]).set_index("component")
    assert components.shape == (k, 8)
    weights = pd.read_csv(out["weights"])
    assert len(weights) == 77 and weights["FLOPs (1E21)"].notna().sum() == 75
    laws = pd.read_csv(out["laws"])
    assert set(laws["component"]) == set(components.index)
    curve = pd.read_csv(out["curve"])
    assert list(curve["k"]) == list(range(1, 9)) and curve.loc[curve["chosen"], "k"].tolist() == [k]
    assert (np.diff(curve["relative_error"]) < 0).all()
    # k = 4 (mean + 3 PCs' worth) reconstructs the matrix to within 5 %.
    assert nmf.relative_err_ == pytest.approx(curve.loc[curve["chosen"], "relative_error"].iloc[0])
    assert nmf.relative_err_ < 0.05
    # One component carries GSM8K, one HumanEval: the reasoning and programming parts.
    assert components["GSM8K"].idxmax() != components["HumanEval"].idxmax()
