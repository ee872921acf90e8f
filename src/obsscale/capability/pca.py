"""Principal capability measures: PCA of the (imputed) benchmark matrix (spec §3).

Mean-centred and not standardised (scores are already fractions in [0, 1]).  Sign convention: the
largest-magnitude loading of each component is positive (scikit-learn >= 1.5); predictions do not
depend on it, but the starting point of the nonlinear law fits does, so it is kept to reproduce the
paper's optima.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from obsscale.core.estimator import StatefulEstimator


class CapabilityPCA(StatefulEstimator):
    """PCA whose components are the principal capability measures PC-1, PC-2, ...

    Learned attributes: `mean_`, `components_` (n_components × n_metrics, rows = loading vectors γ),
    `explained_variance_`, `explained_variance_ratio_`, `singular_values_`, `feature_names_in_`.
    """

    def __init__(self, n_components: int = 5):
        self.n_components = n_components

    def fit(self, X, y=None) -> "CapabilityPCA":
        values = np.asarray(X, dtype=float)
        if np.isnan(values).any():
            raise ValueError("PCA input has missing values; impute first")
        n, t = values.shape
        k = min(self.n_components, n, t)
        self.feature_names_in_ = np.asarray(X.columns, dtype=object) if isinstance(X, pd.DataFrame) else None
        self.mean_ = values.mean(axis=0)
        _, s, vt = np.linalg.svd(values - self.mean_, full_matrices=False)
        signs = np.sign(vt[np.arange(vt.shape[0]), np.argmax(np.abs(vt), axis=1)])
        signs[signs == 0] = 1.0
        vt = vt * signs[:, None]
        var = s**2 / max(n - 1, 1)
        self.components_ = vt[:k]
        self.singular_values_ = s[:k]
        self.explained_variance_ = var[:k]
        self.explained_variance_ratio_ = var[:k] / var.sum()
        self.n_components_ = k
        return self

    @property
    def component_names(self) -> list[str]:
        return [f"PC-{i + 1}" for i in range(self.n_components_)]

    def transform(self, X):
        values = np.asarray(X, dtype=float)
        scores = (values - self.mean_) @ self.components_.T
        if isinstance(X, pd.DataFrame):
            return pd.DataFrame(scores, index=X.index, columns=self.component_names)
        return scores

    def fit_transform(self, X, y=None):
        return self.fit(X).transform(X)

    def inverse_transform(self, scores) -> np.ndarray:
        return np.asarray(scores, dtype=float) @ self.components_ + self.mean_
