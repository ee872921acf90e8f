"""Imputation, PCA and per-family laws on synthetic data with known answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.decomposition import PCA

from obsscale.capability.space import CapabilitySpace
from obsscale.capability.family_laws import FamilyLaws
from obsscale.capability.impute import PCAImputer
from obsscale.capability.pca import CapabilityPCA


def low_rank_scores(n=60, t=8, rank=1, seed=0):
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=(n, rank))
    loadings = rng.uniform(0.5, 1.5, size=(rank, t))
    X = 0.5 + 0.1 * latent @ loadings
    return X


def test_imputation_recovers_a_low_rank_matrix_with_holes():
    X = low_rank_scores(rank=1)
    rng = np.random.default_rng(1)
    holes = rng.random(X.shape) < 0.08
    holes[0, :] = False  # keep every column observed somewhere
    observed = np.where(holes, np.nan, X)
    imputer = PCAImputer(n_components=1, tol=1e-10, max_iter=5000)
    filled = imputer.fit_transform(observed)
    assert imputer.converged_
    assert imputer.n_iter_ > 1
    assert np.max(np.abs(filled[holes] - X[holes])) < 1e-6
    np.testing.assert_allclose(filled[~holes], X[~holes])  # observed cells are never changed


def test_column_mean_fill_is_far_worse_than_the_low_rank_fill():
    X = low_rank_scores(rank=1, seed=3)
    holes = np.zeros_like(X, dtype=bool)
    holes[5:15, 2] = True
    observed = np.where(holes, np.nan, X)
    filled = PCAImputer(tol=1e-10, max_iter=5000).fit_transform(observed)
    mean_fill = np.nanmean(observed[:, 2])
    assert np.abs(filled[holes] - X[holes]).max() < 0.01 * np.abs(mean_fill - X[holes]).max()


def test_imputation_reports_non_convergence(caplog):
    X = low_rank_scores(rank=3, seed=2) + np.random.default_rng(2).normal(0, 0.05, size=(60, 8))
    X[::3, 1] = np.nan
    imputer = PCAImputer(n_components=1, max_iter=2, tol=1e-12).fit(X)
    assert not imputer.converged_
    assert imputer.n_iter_ == 2
    assert "did not converge" in caplog.text


def test_transform_uses_the_fitted_pca_and_clips():
    X = low_rank_scores(rank=1)
    imputer = PCAImputer(tol=1e-10, max_iter=5000).fit(X)
    new = X[:3].copy()
    truth = new[1, 4]
    new[1, 4] = np.nan
    out = imputer.transform(new)
    assert abs(out[1, 4] - truth) < 1e-6
    assert imputer.transform(np.full((1, 8), 5.0)).max() == 1.0


def test_pca_sign_convention_and_agreement_with_scikit_learn():
    rng = np.random.default_rng(4)
    X = rng.random((40, 6))
    pca = CapabilityPCA(n_components=4).fit(X)
    for row in pca.components_:
        assert row[np.argmax(np.abs(row))] > 0
    ref = PCA(n_components=4).fit(X)
    for ours, theirs in zip(pca.components_, ref.components_):
        assert np.allclose(ours, theirs) or np.allclose(ours, -theirs)
    np.testing.assert_allclose(pca.explained_variance_ratio_, ref.explained_variance_ratio_)
    # Flipping the data's sign flips the scores but keeps the convention.
    flipped = CapabilityPCA(n_components=4).fit(-X)
    for row in flipped.components_:
        assert row[np.argmax(np.abs(row))] > 0


def test_transform_never_refits():
    X = pd.DataFrame(np.random.default_rng(5).random((30, 5)), columns=list("abcde"))
    space = CapabilitySpace(list("abcde"), n_components=3).fit(X.iloc[:20])
    before = space.pca_.components_.copy()
    a = space.transform(X.iloc[20:])
    space.transform(X)
    np.testing.assert_array_equal(space.pca_.components_, before)
    assert list(a.columns) == ["PC-1", "PC-2", "PC-3"]
    assert list(a.index) == list(range(20, 30))


def test_family_laws_recover_known_lines():
    rows = []
    for fam, slope, icpt in (("A", 0.5, -1.0), ("B", 0.2, 0.3)):
        for x in np.linspace(0, 3, 6):
            rows.append({"Model": f"{fam}{x}", "Model Family": fam, "FLOPs (1E21)": 10**x, "PC-1": slope * x + icpt})
    rows.append({"Model": "C0", "Model Family": "C", "FLOPs (1E21)": np.nan, "PC-1": 0.0})
    laws = FamilyLaws(components=["PC-1"]).fit(pd.DataFrame(rows))
    t = laws.table_.set_index("family")
    assert set(t.index) == {"A", "B"}
    assert t.loc["A", "slope"] == pytest.approx(0.5, abs=1e-6)
    assert t.loc["B", "intercept"] == pytest.approx(0.3, abs=1e-6)
    assert t.loc["A", "r2"] == pytest.approx(1.0)
    band = laws.predict("A", "PC-1", [1.0, 2.0])
    np.testing.assert_allclose(band["mean"], [-0.5, 0.0], atol=1e-6)


def test_family_law_ols_equals_statsmodels():
    sm = pytest.importorskip("statsmodels.api")
    rng = np.random.default_rng(7)
    x = np.linspace(-1, 3, 9)
    y = 0.3 * x - 0.2 + rng.normal(0, 0.05, size=x.size)
    df = pd.DataFrame({"Model": [f"m{i}" for i in range(9)], "Model Family": "A", "FLOPs (1E21)": 10**x - 1e-9,
                       "PC-1": y})
    laws = FamilyLaws(components=["PC-1"]).fit(df)
    ref = sm.OLS(y, sm.add_constant(np.log10(10**x))).fit()
    row = laws.table_.iloc[0]
    assert row["slope"] == pytest.approx(ref.params[1], rel=1e-9)
    assert row["r2"] == pytest.approx(ref.rsquared, rel=1e-9)
    assert row["slope_se"] == pytest.approx(ref.bse[1], rel=1e-6)
    grid = np.array([0.0, 1.5, 4.0])
    band = laws.predict("A", "PC-1", grid)
    frame = ref.get_prediction(sm.add_constant(grid)).summary_frame(alpha=0.05)
    np.testing.assert_allclose(band["low"], frame["mean_ci_lower"], rtol=1e-6)
    np.testing.assert_allclose(band["high"], frame["mean_ci_upper"], rtol=1e-6)


def test_family_laws_name_a_missing_component():
    df = pd.DataFrame({"Model": ["a", "b", "c"], "Model Family": "A", "FLOPs (1E21)": [1, 10, 100],
                       "PC-1": [0.1, 0.2, 0.3]})
    with pytest.raises(KeyError, match="'PC-3' is not in the table"):
        FamilyLaws(components=["PC-1", "PC-3"]).fit(df)
