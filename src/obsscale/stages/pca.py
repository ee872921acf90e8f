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
    """Fit the capability space of one model set and write
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
    """Per family, OLS of each PC on log10 FLOPs (the table,
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


def write_capability_set(scores_csv, families_yaml, spec: dict[str, Any], n_components: int,
                         imputation: dict[str, Any], pca: dict[str, str], family_laws: dict[str, Any] | None = None,
                         nmf: dict[str, Any] | None = None) -> None:
    """Stage function of the rules `capability_<set>`: everything of one model set in one job (its
    imports paid once): the capability space (`write_capability_space`; `pca` holds its output
    paths), then, when given, the per-family laws (`write_family_laws`; `family_laws` holds the
    components, metrics and output paths) and the NMF of its imputed matrix with Fig C.19
    (`nmf`: settings, k_max, table paths and `figure`: the figure's paths).  Each step reads the
    files the one before it wrote, exactly as separate jobs would."""
    write_capability_space(scores_csv, families_yaml, spec, n_components, imputation, pca["explained_variance"],
                           pca["loadings"], pca["scores"], pca["imputed"], pca["provenance"])
    if family_laws:
        write_family_laws(pca["scores"], family_laws["components"], family_laws["table"], family_laws["lines"],
                          scores_csv, family_laws["metrics"], family_laws["benchmarks"],
                          family_laws["benchmark_lines"])
    if nmf:
        from obsscale.figures.nmf import render_nmf_figure  # matplotlib only where the figure is drawn
        from obsscale.stages.nmf import write_nmf

        write_nmf(pca["imputed"], pca["scores"], nmf["settings"], nmf["k_max"], nmf["components"], nmf["weights"],
                  nmf["family_laws"], nmf["error_curve"], nmf["provenance"])
        figure = nmf["figure"]
        render_nmf_figure(families_yaml, nmf["components"], nmf["weights"], nmf["family_laws"], nmf["error_curve"],
                          figure["png"], figure.get("pdf"), figure["csv"])
