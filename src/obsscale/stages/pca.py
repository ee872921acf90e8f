"""Stage functions of workflow/rules/pca.smk: the capability space of each model set and the
per-family PC-vs-log10-compute laws, written under results/pca/ and results/family_laws/."""

from __future__ import annotations

import logging

from typing import Any, Sequence

import numpy as np
import pandas as pd

from obsscale.capability import scores as D
from obsscale.capability.family_laws import FamilyLaws
from obsscale.capability.space import CapabilitySpace, load_model_set
from obsscale.core.io import provenance, write_csv, write_json

log = logging.getLogger(__name__)


def write_capability_space(scores_csv, families_yaml, spec: dict[str, Any], n_components: int,
                           imputation: dict[str, Any], explained_variance, loadings, scores, imputed,
                           provenance_json) -> CapabilitySpace:
    """Stage function of rule `capability_pca`: fit the capability space of one model set and write
    its explained variance, loadings, per-model PC scores and imputed matrix."""
    models, families = load_model_set(scores_csv, families_yaml, spec)
    metrics = list(spec["metrics"])
    space = CapabilitySpace(metrics, n_components=n_components, imputation=imputation).fit(models)
    pcs = space.transform(models)
    meta_cols = [c for c in D.METADATA_COLUMNS if c in models.columns]
    meta = models[meta_cols].copy()
    if D.FLOPS in meta:
        meta["log10_flops"] = D.log10_flops(meta[D.FLOPS])
    meta["preregistered"] = D.is_preregistered(models, families)
    imputed_matrix = space.impute(models)
    was_missing = models[metrics].isna()
    log.info("%d models, %d families, %d of %d cells imputed; explained variance %s",
             len(models), models[D.FAMILY].nunique(), int(was_missing.to_numpy().sum()), was_missing.size,
             np.round(space.pca_.explained_variance_ratio_, 3).tolist())
    write_csv(space.explained_variance_table(), explained_variance)
    write_csv(space.loadings_table(), loadings)
    write_csv(pd.concat([meta, pcs], axis=1), scores)
    imputed_out = pd.concat([models[[D.MODEL, D.FAMILY]], imputed_matrix], axis=1)
    imputed_out["imputed_columns"] = [";".join(c for c in metrics if row[c]) for _, row in was_missing.iterrows()]
    write_csv(imputed_out, imputed)
    write_json(provenance(
        {"scores": scores_csv, "families": families_yaml}, spec=spec, n_components=n_components,
        imputation=imputation, n_models=len(models), n_families=int(models[D.FAMILY].nunique()),
        imputation_iterations=space.imputer_.n_iter_, imputation_converged=space.imputer_.converged_,
        imputation_max_change=space.imputer_.max_change_,
    ), provenance_json)
    return space


def write_family_laws(pc_scores_csv, components: Sequence[str], output_csv, lines_csv=None,
                      score_table_csv=None, metrics: Sequence[str] = (), benchmarks_csv=None,
                      benchmark_lines_csv=None) -> FamilyLaws:
    """Stage function of rule `family_laws`: per family, OLS of each PC on log10 FLOPs (the table,
    and with `lines_csv` each line with its 95 % band of the mean, drawn by Fig 3 / C.2 / 8); with
    `score_table_csv` the same for each raw benchmark of `metrics` on the set's models (Fig C.4)."""
    scores = pd.read_csv(pc_scores_csv)
    laws = FamilyLaws(components=components).fit(scores)
    write_csv(laws.table_, output_csv)
    if lines_csv is not None:
        write_csv(laws.lines(), lines_csv)
    for comp in components:
        log.info("%s: mean R² over families with ≥ 3 models = %.3f", comp, laws.average_r2(comp))
    if score_table_csv is not None:
        table = pd.read_csv(score_table_csv)
        table = table[table[D.MODEL].isin(set(scores[D.MODEL]))]
        bench = FamilyLaws(components=list(metrics)).fit(table)
        write_csv(bench.table_, benchmarks_csv)
        write_csv(bench.lines(), benchmark_lines_csv)
    return laws
