"""PCA-based imputation of missing benchmark scores (spec §2).

Iterative low-rank ("hard-impute") imputation in z-scored units: missing cells start at the column
mean, then are repeatedly replaced by their rank-k PCA reconstruction until the imputed cells stop
changing.  The reference implementation's stopping rule compared observed cells as well, which a
rank-k model never reproduces, so it always ran its full 1000 iterations; here the test is on the
imputed cells alone (largest change below `tol`), and the iteration count is recorded.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from obsscale.core.errors import InputError
from obsscale.core.estimator import StatefulEstimator

log = logging.getLogger(__name__)


def _as_array(X) -> tuple[np.ndarray, pd.DataFrame | None]:
    if isinstance(X, pd.DataFrame):
        return X.to_numpy(dtype=float, copy=True), X
    return np.array(X, dtype=float, copy=True), None


def _wrap(values: np.ndarray, like: pd.DataFrame | None):
    if like is None:
        return values
    return pd.DataFrame(values, index=like.index, columns=like.columns)


class PCAImputer(StatefulEstimator):
    """Impute missing cells of a score matrix with its rank-`n_components` PCA reconstruction.

    Parameters
    ----------
    n_components : rank of the reconstruction (the paper uses 1).
    max_iter : iteration cap; a fit that reaches it without converging logs a warning.
    tol : convergence threshold on the largest change of an imputed cell, in z-score units.
    clip : bounds applied to every cell after un-standardising (scores are fractions in [0, 1]).

    Learned attributes: `mean_`, `scale_` (z-scoring of the observed training cells),
    `center_`, `components_` (the final PCA in z units), `n_iter_`, `converged_`, `max_change_`.
    """

    def __init__(self, n_components: int = 1, max_iter: int = 1000, tol: float = 1e-6,
                 clip: tuple[float, float] | None = (0.0, 1.0)):
        self.n_components = n_components
        self.max_iter = max_iter
        self.tol = tol
        self.clip = clip

    def _pca(self, Z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        center = Z.mean(axis=0)
        _, _, vt = np.linalg.svd(Z - center, full_matrices=False)
        return center, vt[: self.n_components]

    def _finish(self, Z: np.ndarray) -> np.ndarray:
        X = Z * self.scale_ + self.mean_
        if self.clip is not None:
            X = np.clip(X, *self.clip)
        return X

    def fit(self, X, y=None) -> "PCAImputer":
        self._fit(X)
        return self

    def _fit(self, X) -> np.ndarray:
        values, _ = _as_array(X)
        if values.ndim != 2 or values.shape[1] <= self.n_components:
            raise ValueError(f"need a 2-D matrix with more than {self.n_components} columns, got {values.shape}")
        missing = np.isnan(values)
        if missing.all(axis=0).any():
            cols = list(getattr(X, "columns", range(values.shape[1])))
            empty = [str(c) for c, e in zip(cols, missing.all(axis=0)) if e]
            raise InputError(f"column(s) {empty} have no observed value among the {len(values)} models "
                             "the imputation is fitted on; they cannot be imputed")
        self.mean_ = np.nanmean(values, axis=0)
        scale = np.nanstd(values, axis=0)  # population std over observed cells, as the paper
        self.scale_ = np.where(scale > 0, scale, 1.0)
        Z = (values - self.mean_) / self.scale_
        Z[missing] = 0.0  # the column mean in z units
        self.n_iter_, self.converged_, self.max_change_ = 0, True, 0.0
        center, comps = self._pca(Z)
        if missing.any():
            self.converged_ = False
            for it in range(1, self.max_iter + 1):
                recon = (Z - center) @ comps.T @ comps + center
                change = float(np.max(np.abs(recon[missing] - Z[missing])))
                Z[missing] = recon[missing]
                self.n_iter_, self.max_change_ = it, change
                center, comps = self._pca(Z)
                if change < self.tol:
                    self.converged_ = True
                    break
            if self.converged_:
                log.info("imputation converged after %d iterations (largest change %.2e)", self.n_iter_, change)
            else:
                log.warning("imputation did not converge in %d iterations (largest change %.2e > tol %.1e)",
                            self.max_iter, self.max_change_, self.tol)
        self.center_, self.components_ = center, comps
        self.n_features_in_ = values.shape[1]
        return self._finish(Z)

    def fit_transform(self, X, y=None):
        _, like = _as_array(X)
        return _wrap(self._fit(X), like)

    def transform(self, X):
        """Impute new rows with the fitted PCA held fixed (spec §2, test rows)."""
        values, like = _as_array(X)
        if values.shape[1] != self.n_features_in_:
            raise ValueError(f"expected {self.n_features_in_} columns, got {values.shape[1]}")
        missing = np.isnan(values)
        Z = (values - self.mean_) / self.scale_
        Z[missing] = 0.0
        # Each row iterates until its own cells converge, so a model's imputation does not depend on
        # which other models are transformed with it (one model alone gets the same values).
        active = missing.any(axis=1)
        for _ in range(self.max_iter):
            if not active.any():
                break
            rows = np.flatnonzero(active)
            sub, miss = Z[rows], missing[rows]
            recon = (sub - self.center_) @ self.components_.T @ self.components_ + self.center_
            change = np.where(miss, np.abs(recon - sub), 0.0).max(axis=1)
            sub[miss] = recon[miss]
            Z[rows] = sub
            active[rows[change < self.tol]] = False
        return _wrap(self._finish(Z), like)
