"""The capability space: imputation + PCA of a model set's benchmark matrix, and the stage that
writes it for each configured model set."""

from __future__ import annotations

import logging
import os
from typing import Any, Sequence

import numpy as np
import pandas as pd

from obsscale.capability import scores as D
from obsscale.capability.impute import PCAImputer
from obsscale.capability.pca import CapabilityPCA
from obsscale.core.estimator import StatefulEstimator

log = logging.getLogger(__name__)


class CapabilitySpace(StatefulEstimator):
    """Imputation then PCA over `metrics`, fitted on one set of models and applied to others.

    `fit(df)` learns `imputer_` and `pca_` from the rows of `df`; `impute(df)` and `transform(df)`
    apply them unchanged, so a backtest is fit(train) + transform(test) and a bootstrap is a refit
    on resampled rows.  `to_state()` / `from_state()` freeze and restore both parts.
    """

    def __init__(self, metrics: Sequence[str], n_components: int = 5, imputation: dict | None = None):
        self.metrics = metrics
        self.n_components = n_components
        self.imputation = imputation

    def _matrix(self, df: pd.DataFrame) -> pd.DataFrame:
        missing = [m for m in self.metrics if m not in df.columns]
        if missing:
            raise KeyError(f"metric column(s) {missing} not in the table")
        return df.loc[:, list(self.metrics)].astype(float)

    def fit(self, df: pd.DataFrame, y=None) -> "CapabilitySpace":
        self.imputer_ = PCAImputer(**(self.imputation or {}))
        imputed = self.imputer_.fit_transform(self._matrix(df))
        self.pca_ = CapabilityPCA(self.n_components).fit(imputed)
        return self

    def impute(self, df: pd.DataFrame) -> pd.DataFrame:
        return self.imputer_.transform(self._matrix(df))

    def transform(self, df: pd.DataFrame) -> pd.DataFrame:
        return self.pca_.transform(self.impute(df))

    @property
    def component_names(self) -> list[str]:
        return self.pca_.component_names

    def explained_variance_table(self) -> pd.DataFrame:
        ratio = self.pca_.explained_variance_ratio_
        return pd.DataFrame({
            "component": self.component_names,
            "ratio": ratio,
            "cumulative": np.cumsum(ratio),
            "variance": self.pca_.explained_variance_,
        })

    def loadings_table(self) -> pd.DataFrame:
        """One row per component: its loading vector γ over the metrics, and the centring mean."""
        table = pd.DataFrame(self.pca_.components_, columns=list(self.metrics))
        table.insert(0, "component", self.component_names)
        mean = pd.DataFrame([self.pca_.mean_], columns=list(self.metrics))
        mean.insert(0, "component", "mean")
        return pd.concat([table, mean], ignore_index=True)


def load_model_set(scores_csv: str | os.PathLike, families_yaml: str | os.PathLike, spec: dict[str, Any]
                   ) -> tuple[pd.DataFrame, D.Families]:
    """Read a validated score table and keep the model set described by a config `sets` entry."""
    families = D.load_families(families_yaml)
    table = D.read_score_table(scores_csv, spec["metrics"], families)
    selected = D.select_models(
        table, families,
        family_list=spec.get("families", "eval_base"),
        include_misc_families=spec.get("include_misc_families", False),
        include_preregistered=spec.get("include_preregistered", False),
    )
    if len(selected) <= len(spec["metrics"]):
        raise D.ScoreTableError(
            scores_csv, f"the model set keeps only {len(selected)} models for {len(spec['metrics'])} metrics; "
            "PCA needs more models than metrics")
    return selected, families
