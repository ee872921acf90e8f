"""Candidates of a selection: models grouped into families with their capability-space scores, and
how the guide (Table 1) and the held-out evaluation build them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from obsscale.capability.scores import FAMILY, MODEL, SIZE, load_families, read_score_table, select_models
from obsscale.capability.space import CapabilitySpace



@dataclass(frozen=True)
class FamilyPool:
    """Candidate models grouped into families: the input of every search.

    `scores` is n × K (the PC scores used by the objective); `group` gives each row's family as an
    index into `families`, which is the enumeration order of the search.
    """

    families: tuple[str, ...]
    scores: np.ndarray
    group: np.ndarray
    models: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        scores = np.asarray(self.scores, dtype=float)
        group = np.asarray(self.group, dtype=np.int64)
        if scores.ndim != 2:
            raise ValueError(f"scores must be a 2-D array (models × PCs), got shape {scores.shape}")
        if group.shape != (scores.shape[0],):
            raise ValueError(f"group has shape {group.shape}, expected ({scores.shape[0]},)")
        if not np.all(np.isfinite(scores)):
            bad = int(np.flatnonzero(~np.all(np.isfinite(scores), axis=1))[0])
            name = self.models[bad] if self.models else f"row {bad}"
            raise ValueError(f"scores of {name} are not finite: {scores[bad]}")
        if len(group) and (group.min() < 0 or group.max() >= len(self.families)):
            raise ValueError("group indices must lie in [0, len(families))")
        if self.models and len(self.models) != scores.shape[0]:
            raise ValueError(f"{len(self.models)} model names for {scores.shape[0]} score rows")
        object.__setattr__(self, "scores", scores)
        object.__setattr__(self, "group", group)

    @classmethod
    def from_frame(cls, df: pd.DataFrame, components: Sequence[str],
                   family_order: Sequence[str] | None = None) -> "FamilyPool":
        """Build a pool from a frame with `Model`, `Model Family` and the PC-score columns.

        Families follow `family_order` (families absent from the frame are skipped; rows of
        families not in it are an error), else their order of first appearance.
        """
        missing = [c for c in (FAMILY, *components) if c not in df.columns]
        if missing:
            raise KeyError(f"score frame lacks column(s) {missing}")
        present = list(dict.fromkeys(df[FAMILY]))
        if family_order is None:
            families = present
        else:
            unknown = [f for f in present if f not in family_order]
            if unknown:
                raise ValueError(f"families {unknown} are not in the family order")
            families = [f for f in family_order if f in set(present)]
        index = {f: i for i, f in enumerate(families)}
        models = tuple(df[MODEL].astype(str)) if MODEL in df.columns else ()
        return cls(
            families=tuple(families),
            scores=df[list(components)].to_numpy(dtype=float),
            group=np.array([index[f] for f in df[FAMILY]], dtype=np.int64),
            models=models,
        )

    @property
    def n_components(self) -> int:
        return self.scores.shape[1]

    def family_sizes(self) -> np.ndarray:
        return np.bincount(self.group, minlength=len(self.families))

    def family_grams(self) -> np.ndarray:
        """G_f = S_fᵀS_f for every family f (shape families × K × K)."""
        k = self.n_components
        grams = np.zeros((len(self.families), k, k))
        np.add.at(grams, self.group, self.scores[:, :, None] * self.scores[:, None, :])
        return grams

    def family_index(self, names: Iterable[str]) -> list[int]:
        out = []
        for name in names:
            if name not in self.families:
                raise KeyError(f"family {name!r} is not in the pool; pool families: {list(self.families)}")
            out.append(self.families.index(name))
        return out

    def models_of(self, family_indices: Iterable[int]) -> list[str]:
        chosen = np.isin(self.group, list(family_indices))
        if not self.models:
            return [str(i) for i in np.flatnonzero(chosen)]
        return [m for m, c in zip(self.models, chosen) if c]



def guide_pool_frame(scores_csv, families_yaml, metrics: Sequence[str], family_list: str = "eval_base",
                     max_model_size: float | None = None, dropna: bool = False):
    """The candidate models of one guide setting: the default model set, optionally only models of
    at most `max_model_size` billion parameters (missing sizes are left out, like the reference's
    cutoff split), optionally without rows that miss a metric."""
    families = load_families(families_yaml)
    table = read_score_table(scores_csv, list(metrics), families)
    models = select_models(table, families, family_list=family_list)
    if max_model_size is not None:
        models = models[models[SIZE] <= max_model_size].reset_index(drop=True)
    if dropna:
        models = models.dropna(subset=list(metrics)).reset_index(drop=True)
    return models, families


def capability_pool(models: pd.DataFrame, families, metrics: Sequence[str], n_components: int,
                    pca_components: int, imputation: dict | None) -> FamilyPool:
    """PC scores of the candidates from imputation + PCA fitted on the candidates themselves."""
    space = CapabilitySpace(list(metrics), n_components=pca_components, imputation=imputation).fit(models)
    pcs = space.transform(models)
    names = [f"PC-{i}" for i in range(1, n_components + 1)]
    frame = pd.concat([models[[MODEL, FAMILY]], pcs[names]], axis=1)
    # the canonical family order (evaluated base families first) is the enumeration order
    return FamilyPool.from_frame(frame, names, family_order=families.order)
