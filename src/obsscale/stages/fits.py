"""Stage functions of workflow/rules/fits.smk: each experiment's fits, predictions, curves,
reference lines, sweeps and frozen laws; the preregistration scores and Table C.1."""

from __future__ import annotations

import logging

import json
from pathlib import Path

import numpy as np
import pandas as pd

from obsscale.core.io import tallied_warnings, write_csv, write_json
from obsscale.laws.experiments import family_index_lines, run_experiment
from obsscale.laws.prereg import freeze_experiment, preregistered_forms, score_frozen
from obsscale.laws.spec import resolve_experiment

log = logging.getLogger(__name__)


def write_experiment_fits(name: str, block: dict, config: dict, scores_csv, families_yaml, target_csv,
                          fits_csv, predictions_csv, curves_csv, references_csv, sweeps_csv, prereg_json,
                          family_lines_csv=None) -> dict:
    """Stage function of rule `fit_experiment`.  Beside the fits it writes what the figures draw:
    curves, reference lines, sweeps and (`family_lines_csv`) the per-family lines of the capability
    index on log10 FLOPs (Fig C.3), so that no figure fits anything."""
    spec = resolve_experiment(name, block, config)
    # Degenerate fits (more parameters than the data identify; common in the sweeps' small training
    # sets) are marked in the tables' status columns and summarised in one line, not one per fit.
    with tallied_warnings("degenerate", "obsscale.laws.law", "obsscale.laws.fit") as (laws, fits):
        result = run_experiment(spec, scores_csv, families_yaml, target_csv)
    if laws.count:
        log.warning("%s: %d law fits degenerate (parameters not identifiable), e.g. %s; each is marked in "
                    "the status column of the fit and sweep tables", name, laws.count, fits.first or laws.first)
    table = result["fits_table"]
    for _, r in table.iterrows():
        log.info("%s / %s / %s: %s  n=%s/%s  MSE train %.2e test %.2e  [%s]", name, r["target"], r["predictors"],
                 r.get("form", ""), r["n_train"], r["n_test"], r.get("mse_train", np.nan), r.get("mse_test", np.nan),
                 r.get("status", ""))
    write_csv(table, fits_csv)
    write_csv(result["predictions"], predictions_csv)
    write_csv(result["curves"], curves_csv)
    write_csv(result["references"], references_csv)
    write_csv(result["sweeps"], sweeps_csv)
    if family_lines_csv is not None:
        write_csv(family_index_lines(result["predictions"]), family_lines_csv)
    write_json(freeze_experiment(spec, result, scores_csv, target_csv, families_yaml), prereg_json)
    return result


def write_preregistration(experiments: dict[str, dict[str, str]], families_yaml, table_csv) -> pd.DataFrame:
    """Stage function of rule `preregistration`: score each experiment's newer models against its
    frozen laws (unchanged) and write Table C.1 of all frozen main laws.

    `experiments` maps a name to its paths: prereg (frozen JSON), scores, targets, scored (output)."""
    docs = []
    for name, paths in experiments.items():
        doc = json.loads(Path(paths["prereg"]).read_text())
        docs.append(doc)
        scored = score_frozen(doc, paths["scores"], paths["targets"], families_yaml)
        if len(scored):
            summary = scored.dropna(subset=["y_hat"]).groupby(["target", "predictors", "preregistered"])["squared_error"]
            for key, v in summary.mean().items():
                log.info("%s %s: frozen-law MSE on %s models = %.2e", name, key[:2],
                         "preregistered" if key[2] else "other held-out", v)
        write_csv(scored, paths["scored"])
    table = preregistered_forms(docs)
    write_csv(table, table_csv)
    return table
