"""Non-negative matrix factorisation of the benchmark matrix (paper Appx C.8, Fig C.19).

The imputed model × benchmark matrix B (accuracies in [0, 1], so non-negative) is factorised as
B ≈ W H with W ≥ 0 (models × k, each model's component scores) and H ≥ 0 (k × benchmarks, each
component's benchmark weights).  Unlike PCA, the components are additive parts: a model's score
on a benchmark is a sum of non-negative contributions.  The paper gives no settings; ours (and
why) are in docs/laws.md, "Fig C.19: NMF of the benchmark matrix".

Normalisation, so that the components are comparable across k and runs: each row of H is scaled
to unit Euclidean norm (the scale moves into W, the product is unchanged), and the components are
ordered by their share of ‖W H‖² (largest first), named NMF-1 … NMF-k.
"""

from __future__ import annotations

import logging
import warnings
from typing import Sequence

import numpy as np
import pandas as pd

from obsscale.core.errors import InputError

log = logging.getLogger(__name__)

# Defaults of the config block `nmf:` (docs/laws.md).
DEFAULTS = {"n_components": 4, "init": "nndsvda", "max_iter": 2000, "tol": 1e-4, "random_state": 0}


class NMFError(InputError):
    """The benchmark matrix cannot be factorised (missing or negative cells)."""


class BenchmarkNMF:
    """NMF of a model × benchmark matrix, scikit-learn style.

    `fit(B)` takes a DataFrame (rows = models, columns = benchmarks).  Learned: `components_`
    (DataFrame k × benchmarks, unit-norm rows), `weights_` (DataFrame models × k), `n_iter_`,
    `reconstruction_err_` (Frobenius norm of B − W H) and `relative_err_` (that over ‖B‖).
    """

    def __init__(self, n_components: int = 4, init: str = "nndsvda", max_iter: int = 2000,
                 tol: float = 1e-4, random_state: int = 0):
        self.n_components = n_components
        self.init = init
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state

    def _estimator(self):
        from sklearn.decomposition import NMF

        return NMF(n_components=self.n_components, init=self.init, max_iter=self.max_iter, tol=self.tol,
                   random_state=self.random_state)

    def fit(self, matrix: pd.DataFrame, y=None) -> "BenchmarkNMF":
        X = _check_matrix(matrix)
        if self.n_components == 1:
            # Rank one: the leading singular pair of a non-negative matrix is non-negative
            # (Perron-Frobenius), so the truncated SVD is the exact NMF optimum.
            u, s, vt = np.linalg.svd(X, full_matrices=False)
            W, H, n_iter = np.abs(u[:, :1]) * s[0], np.abs(vt[:1]), 0
        else:
            est = self._estimator()
            with warnings.catch_warnings():  # non-convergence is logged once below, with k
                warnings.simplefilter("ignore", category=UserWarning)
                W = est.fit_transform(X)
            H, n_iter = est.components_, int(est.n_iter_)
        norms = np.linalg.norm(H, axis=1)
        norms[norms == 0] = 1.0
        H, W = H / norms[:, None], W * norms[None, :]
        share = np.array([np.linalg.norm(np.outer(W[:, i], H[i])) ** 2 for i in range(H.shape[0])])
        order = np.argsort(-share, kind="stable")
        names = [f"NMF-{i + 1}" for i in range(len(order))]
        self.components_ = pd.DataFrame(H[order], index=names, columns=list(matrix.columns))
        self.weights_ = pd.DataFrame(W[:, order], index=matrix.index, columns=names)
        self.n_iter_ = n_iter
        self.converged_ = self.n_iter_ < self.max_iter
        self.reconstruction_err_ = float(np.linalg.norm(X - W @ H))
        self.relative_err_ = self.reconstruction_err_ / float(np.linalg.norm(X))
        if not self.converged_:
            log.warning("NMF with k = %d stopped at max_iter = %d (tol %.0e not reached)",
                        self.n_components, self.max_iter, self.tol)
        return self

    def transform(self, matrix: pd.DataFrame) -> pd.DataFrame:
        """Component scores of new models with the fitted H held fixed (non-negative least squares)."""
        from scipy.optimize import nnls

        X = _check_matrix(matrix)
        H = self.components_.to_numpy()
        W = np.array([nnls(H.T, row)[0] for row in X])
        return pd.DataFrame(W, index=matrix.index, columns=self.components_.index)


def _check_matrix(matrix: pd.DataFrame) -> np.ndarray:
    X = matrix.to_numpy(dtype=float)
    if np.isnan(X).any():
        r, c = np.argwhere(np.isnan(X))[0]
        raise NMFError(f"NMF: benchmark matrix has a missing cell (model {matrix.index[r]!r}, "
                       f"column {matrix.columns[c]!r}); factorise the imputed matrix")
    if (X < 0).any():
        r, c = np.argwhere(X < 0)[0]
        raise NMFError(f"NMF: negative value {X[r, c]} (model {matrix.index[r]!r}, column "
                       f"{matrix.columns[c]!r}); NMF needs non-negative scores")
    return X


def reconstruction_curve(matrix: pd.DataFrame, ks: Sequence[int], **settings) -> pd.DataFrame:
    """The component count's effect: reconstruction error of B for each k (same settings).

    Columns: k, frobenius_error, relative_error (‖B − WH‖/‖B‖), explained (1 − relative²), n_iter,
    converged.  PCA of the centred matrix is the natural yardstick; NMF of the uncentred matrix
    spends its first component on the mean, so its k-component error matches PCA's k − 1."""
    rows = []
    for k in ks:
        nmf = BenchmarkNMF(n_components=int(k), **settings).fit(matrix)
        rows.append({"k": int(k), "frobenius_error": nmf.reconstruction_err_,
                     "relative_error": nmf.relative_err_, "explained": 1.0 - nmf.relative_err_ ** 2,
                     "n_iter": nmf.n_iter_, "converged": nmf.converged_})
    return pd.DataFrame(rows)
