"""Stage functions of workflow/rules/fits.smk: each experiment's fits, predictions, curves,
reference lines, sweeps and frozen laws; the preregistration scores and Table C.1."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from obsscale.core.io import tallied_warnings, write_csv, write_json
from obsscale.core.parallel import run_forked
from obsscale.laws.experiments import family_index_lines, run_experiment
from obsscale.laws.prereg import freeze_experiment, preregistered_forms, score_frozen
from obsscale.laws.spec import resolve_experiment

log = logging.getLogger(__name__)


def write_experiment_fits(name: str, block: dict, config: dict, scores_csv, families_yaml, target_csv,
                          fits_csv, predictions_csv, curves_csv, references_csv, sweeps_csv, prereg_json,
                          family_lines_csv=None) -> dict:
    """One experiment's fits (rule `fit_experiments` runs each).  Beside the fits it writes what the
    figures draw: curves, reference lines, sweeps and (`family_lines_csv`) the per-family lines of
    the capability index on log10 FLOPs (Fig C.3), so that no figure fits anything."""
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


def fit_cost(block: dict) -> int:
    """A rough cost of an experiment's fits (targets x predictor sets, more with sweeps): the
    parallel fits start with the largest so that no worker is left with one long fit at the end."""
    n = len(block.get("targets", [])) * len(block.get("predictors", [])) or 1
    return n * (1 + len(block.get("sweeps") or {}))


def _fit_one(name: str, block: dict, config: dict, paths: dict) -> None:
    write_experiment_fits(
        name, block, config, paths["scores"], paths["families"], paths["targets"], paths["fits"],
        paths["predictions"], paths["curves"], paths["reference_lines"], paths["sweeps"], paths["prereg"],
        paths["family_lines"],
    )


def write_all_fits(experiments: dict[str, dict], config: dict, families_yaml, table_csv, workers: int = 1) -> None:
    """Stage function of rule `fit_experiments`: every experiment's fits (`write_experiment_fits`),
    `workers` at a time, then the preregistration scores and Table C.1 (`write_preregistration`).

    `experiments` maps a name to {"block": its config block, "scores", "targets", and the output
    paths of `outputs.EXPERIMENT_FILES`}.  One job fits them all: its imports are paid once rather than once
    per experiment (about 1.9 s of CPU each, bench/workflow_runtime.py).  Each experiment runs in a
    child forked from this process before any fit: every experiment starts from the same process
    state whatever ran before it, so its numbers (degenerate fits included, whose optimiser reads
    work memory it has not written) do not depend on the worker count or the order (tested)."""
    order = sorted(experiments, key=lambda n: -fit_cost(experiments[n]["block"]))
    jobs = [(n, experiments[n]["block"], config, {**experiments[n], "families": families_yaml}) for n in order]
    run_forked(_fit_one, jobs, workers)
    write_preregistration(
        {n: {"prereg": e["prereg"], "scores": e["scores"], "targets": e["targets"], "scored": e["scored"]}
         for n, e in experiments.items()},
        families_yaml, table_csv,
    )


def write_preregistration(experiments: dict[str, dict[str, str]], families_yaml, table_csv) -> pd.DataFrame:
    """Score each experiment's newer models against its frozen laws (unchanged) and write Table C.1
    of all frozen main laws.

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
