"""The library's estimators on scikit-learn's base: parameters, `clone`, and a frozen state
(`to_state` → JSON → `from_state`) that predicts exactly as the fitted estimator."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from obsscale.capability.family_laws import FamilyLaws
from obsscale.capability.impute import PCAImputer
from obsscale.capability.pca import CapabilityPCA
from obsscale.capability.space import CapabilitySpace
from obsscale.core.estimator import StatefulEstimator
from obsscale.laws.law import ObservationalScalingLaw

METRICS = [f"m{i}" for i in range(6)]


def score_frame(n=40, seed=0):
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=(n, 2))
    values = 0.5 + 0.1 * latent @ rng.uniform(0.5, 1.5, size=(2, len(METRICS))) + rng.normal(0, 0.01, (n, len(METRICS)))
    df = pd.DataFrame(values, columns=METRICS)
    df.iloc[3, 2] = df.iloc[7, 4] = np.nan
    df["Model Family"] = [f"F{i % 4}" for i in range(n)]
    df["FLOPs (1E21)"] = 10 ** (latent[:, 0] + 1.0)
    return df


def roundtrip(estimator: StatefulEstimator) -> StatefulEstimator:
    state = json.loads(json.dumps(estimator.to_state()))
    restored = type(estimator).from_state(state)
    assert type(restored) is type(estimator)
    return restored


@pytest.mark.parametrize("estimator", [
    PCAImputer(n_components=2, tol=1e-8), CapabilityPCA(3), CapabilitySpace(METRICS, n_components=3),
    FamilyLaws(components=["PC-1"], min_models=3), ObservationalScalingLaw(link="sigmoid_floor", n_starts=2),
])
def test_parameters_and_clone(estimator):
    params = estimator.get_params()
    copy = clone(estimator)
    assert copy is not estimator and copy.get_params().keys() == params.keys()
    assert not any(k.endswith("_") for k in vars(copy))
    key = next(iter(params))
    assert estimator.set_params(**{key: params[key]}) is estimator
    with pytest.raises(ValueError):
        estimator.set_params(no_such_parameter=1)


def test_capability_space_state_transforms_unchanged():
    df = score_frame()
    space = CapabilitySpace(METRICS, n_components=3, imputation={"n_components": 1}).fit(df.iloc[:30])
    restored = roundtrip(space)
    assert isinstance(restored.imputer_, PCAImputer) and isinstance(restored.pca_, CapabilityPCA)
    assert restored.pca_.feature_names_in_.dtype == object
    pd.testing.assert_frame_equal(restored.transform(df), space.transform(df))
    assert restored.get_params() == space.get_params()


def test_family_laws_state_predicts_unchanged():
    df = score_frame()
    df["PC-1"] = 0.3 * np.log10(df["FLOPs (1E21)"]) + np.random.default_rng(1).normal(0, 0.05, len(df))
    laws = FamilyLaws(components=["PC-1"]).fit(df)
    restored = roundtrip(laws)
    pd.testing.assert_frame_equal(restored.table_, laws.table_)
    x = np.linspace(0, 2, 5)
    pd.testing.assert_frame_equal(restored.predict("F1", "PC-1", x), laws.predict("F1", "PC-1", x))


def test_law_state_and_frozen_law_predict_unchanged():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(30, 2))
    y = 0.9 / (1 + np.exp(-(X @ [1.5, -0.5] + 0.2))) + 0.1 + rng.normal(0, 0.01, 30)
    law = ObservationalScalingLaw(link="sigmoid_floor", n_starts=2).fit(X, y)
    restored = roundtrip(law)
    np.testing.assert_array_equal(restored.predict(X), law.predict(X))
    assert restored.status_ == law.status_ and restored.warnings_ == law.warnings_
    frozen = ObservationalScalingLaw.frozen(law.link, law.estimator, law.params_.tolist(), law.status_)
    np.testing.assert_array_equal(frozen.predict(X), law.predict(X))
    assert frozen.h_ == law.h_ and frozen.n_features_in_ == 2
