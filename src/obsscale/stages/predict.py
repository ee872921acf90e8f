"""Stage function of workflow/rules/predict.smk: predict models with the frozen laws.

A `predict:` set of the config names score tables (or CSVs), which frozen laws to use and which
models: `all` of them, or `without_target` — per law, the models that have scores but no value of
the law's target (the models the fit could not use).  It writes results/predictions/{name}.csv and a
figure placing the predicted models on each main law's curve with their bands.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from obsscale.capability import scores as D
from obsscale.core.errors import ConfigError, InputError
from obsscale.core.io import write_csv
from obsscale.laws.frozen import FrozenLaw, laws_of, read_record, select_laws
from obsscale.laws.predict import (
    PREDICTION_COLUMNS,
    law_rows,
    applicable_laws,
    log_skipped,
    read_prediction_scores,
)

log = logging.getLogger(__name__)
MODEL_SETS = ("all", "without_target", "evaluated")


def evaluated_models(tidy_csv) -> list[str]:
    """The models the evaluation stage ran (source "run" in its scores_tidy.csv)."""
    tidy = pd.read_csv(tidy_csv, usecols=["model", "source"])
    return list(dict.fromkeys(tidy.loc[tidy["source"] == "run", "model"]))


def models_without_target(law: FrozenLaw, spec: dict, scores: pd.DataFrame, cache: dict | None = None) -> np.ndarray:
    """Rows of `scores` that have no value of the law's target in the experiment's target CSV."""
    data = spec.get("data", {})
    path = data.get("targets_csv")
    if not path or not Path(path).exists():
        log.warning("%s: target CSV %s not found; every model is predicted", law.name, path)
        return np.ones(len(scores), bool)
    cache = {} if cache is None else cache
    if path not in cache:
        cache[path] = pd.read_csv(path, dtype=str).set_index(data.get("join", D.MODEL))
    targets = cache[path]
    column = law.target_["column"]
    if column not in targets.columns:
        return np.ones(len(scores), bool)
    known = set(targets.index[pd.to_numeric(targets[column], errors="coerce").notna().to_numpy()])
    return ~scores[D.MODEL].isin(known).to_numpy()


def _rows_to_predict(law: FrozenLaw, spec: dict, scores: pd.DataFrame, models, cache: dict) -> np.ndarray:
    if isinstance(models, str):
        if models == "without_target":
            return models_without_target(law, spec, scores, cache)
        if models == "all":
            return np.ones(len(scores), bool)
        raise ConfigError(f"config predict: models '{models}' is not one of {MODEL_SETS} or a list of names")
    return scores[D.MODEL].isin(models).to_numpy()


def predict_set(scores_csvs: Sequence[str], prereg_jsons: Sequence[str], laws="all",
                models="without_target", main_only: bool = False) -> pd.DataFrame:
    """The prediction table of one `predict:` set (see the module doc).  Each score table is
    predicted by the laws whose columns it has (a base table by the base laws, an instruct table by
    the instruct laws); a law named in `laws` that no table can feed is an error."""
    docs = [read_record(path) for path in prereg_jsons]
    return predict_with(scores_csvs, docs, laws, models, main_only)[0]


def predict_with(scores_csvs: Sequence[str], docs: Sequence[dict], laws="all", models="without_target",
                 main_only: bool = False) -> tuple[pd.DataFrame, list[FrozenLaw]]:
    """`predict_set` on parsed records; also returns every law of the records (for the figure)."""
    every = [law for doc in docs for law in laws_of(doc)]
    specs = {doc["experiment"]: doc.get("spec", {}) for doc in docs}
    frozen = [law for law in every if law.is_main] if main_only else every
    frozen = select_laws(frozen, laws)
    metrics = [m for law in frozen for m in law.metrics]
    rows, used, seen, cache, unreadable = [], set(), set(), {}, []
    for path in scores_csvs:
        scores = read_prediction_scores(path, metrics)
        scores = scores[~scores[D.MODEL].isin(seen)].reset_index(drop=True)
        seen |= set(scores[D.MODEL])
        try:
            usable, skipped = applicable_laws(frozen, scores.columns, source=str(path)) if len(scores) else ([], {})
        except InputError as exc:
            # Of several tables, one that no frozen law can read (an instruct table when only base
            # laws are frozen) is left out with a warning; with one table it is the user's error.
            if len(scores_csvs) == 1:
                raise
            log.warning("%s: left out, no frozen law can predict it (%s)", path, exc)
            unreadable.append(exc)
            continue
        log_skipped(skipped, str(path))
        for law in usable:
            used.add(law.name)
            keep = _rows_to_predict(law, specs[law.experiment], scores, models, cache)
            if keep.any():
                rows.append(law_rows(law, scores.loc[keep].reset_index(drop=True)))
    if unreadable and len(unreadable) == len(scores_csvs):
        raise unreadable[0]
    if laws != "all":
        unused = [law for law in frozen if law.name not in used]
        if unused:
            raise ConfigError(f"config predict: law {unused[0].name} needs columns {unused[0].input_columns} "
                              f"that none of the score tables {list(map(str, scores_csvs))} has")
    if not isinstance(models, str):
        absent = sorted(set(models) - seen)
        if absent:
            raise ConfigError(f"config predict: models {absent} are in none of the score tables {list(map(str, scores_csvs))}")
    table = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=PREDICTION_COLUMNS)
    return table[PREDICTION_COLUMNS], every


def write_predictions(name: str, scores_csvs: Sequence[str], prereg_jsons: Sequence[str], out_csv,
                      figure: dict | None = None, laws="all", models="without_target",
                      main_only: bool = False, evaluated_tidy=None, figure_laws="all",
                      families_yaml=None) -> pd.DataFrame:
    """Stage function of rule `predict`: the table, then (when `figure` names png/pdf/csv paths) the
    figure of the main laws' curves with the predicted models on them.  `models: evaluated` means
    the models of the evaluation stage's `evaluated_tidy` table that it ran; `figure_laws` names the
    laws that get a panel (all main laws by default)."""
    if models == "evaluated":
        if evaluated_tidy is None:
            raise ConfigError(f"config predict.sets.{name}.models: 'evaluated' needs the evaluation stage enabled")
        models = evaluated_models(evaluated_tidy)
    docs = [read_record(path) for path in prereg_jsons]
    table, every = predict_with(scores_csvs, docs, laws=laws, models=models, main_only=main_only)
    if families_yaml is not None:
        unknown = sorted(set(table["family"].dropna()) - set(D.load_families(families_yaml).known_families) - {""})
        if unknown:
            log.info("%s: families %s are not in %s; allowed (a prediction needs no family)", name, unknown,
                     families_yaml)
    n_models = table["model"].nunique()
    done = table["y_hat"].notna()
    log.info("%s: %d model(s) × %d law(s): %d predictions, %d with a band; %d outside the training range",
             name, n_models, table["law"].nunique(), int(done.sum()), int(table["band_lo"].notna().sum()),
             int((table["extrapolation_logits"] > 0).sum()))
    for status, n in table.loc[table["law_status"].isin(["diverged", "degenerate"]), "law_status"].value_counts().items():
        log.info("%s: %d row(s) of %s laws carry no prediction", name, n, status)
    if figure:
        from obsscale.figures.predictions import render_prediction_figure

        render_prediction_figure(figure_panels(table, every, figure_laws), **figure)
    # The workflow's table carries no time stamp, so that two runs give the same bytes: a law is
    # identified by experiment, target, predictors and the SHA-256 of its data (its frozen date is in
    # results/prereg/{experiment}.json, and in the CLI's and the library's output).
    write_csv(table.drop(columns=["frozen"]), out_csv)
    return table


def _panel_data(law, predicted: pd.DataFrame) -> pd.DataFrame:
    entry = law.entry
    parts = []
    curve = entry.get("curve")
    if curve:
        parts.append(pd.DataFrame({"kind": "curve", "model": "", "x": curve["x"], "y": curve["y_hat"],
                                   "lo": curve["band_lo"], "hi": curve["band_hi"]}))
    points = entry.get("points")
    if points:
        parts.append(pd.DataFrame({"kind": points["role"], "model": points["model"], "x": points["x"],
                                   "y": points["y"], "lo": np.nan, "hi": np.nan}))
    if len(predicted):
        parts.append(pd.DataFrame({"kind": "predicted", "model": predicted["model"].to_numpy(),
                                   "x": predicted["log10_equivalent_flops"].to_numpy(),
                                   "y": predicted["y_hat"].to_numpy(), "lo": predicted["band_lo"].to_numpy(),
                                   "hi": predicted["band_hi"].to_numpy()}))
    data = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["kind", "model", "x", "y"])
    data.insert(0, "law", law.name)
    return data.astype({"x": float, "y": float, "lo": float, "hi": float}, errors="ignore")


def figure_panels(table: pd.DataFrame, laws: Sequence[FrozenLaw], names: Sequence[str] | str = "all") -> list[dict]:
    """The panels of the prediction figure: one per main law that predicted at least one model
    (every main law when none did); `names` keeps the laws so named (experiment, experiment/target, ...).
    Each panel holds the frozen curve, its training points and the predicted models with their bands."""
    main = [law for law in laws if law.is_main]
    if not isinstance(names, str):
        # Panels of experiments this run did not fit (a config that runs other experiments than
        # the default's `figure_laws`) are left out of the figure, said once; the table is complete.
        present = {law.experiment for law in main}
        absent = [n for n in names if str(n).split("/")[0] not in present]
        if absent:
            log.warning("prediction figure: no frozen law of %s; those panels are left out", absent)
        names = [n for n in names if n not in absent] or "all"
    laws = select_laws(main, names)
    predicted = table[table["main"].astype(bool)] if len(table) else table
    with_models = [law for law in laws if (predicted["law"] == law.name).any()] if len(predicted) else []
    panels = []
    for law in with_models or laws:
        ref = law.reference_.family if law.reference_ is not None else ""
        xlabel = (f"log10 {ref}-equivalent FLOPs (1e21)" if law.predictors_.kind == "pcs"
                  else f"log10 {law.predictors_.column}")
        status = "" if law.status_ == "ok" else f" ({law.status_})"
        title = f"{law.experiment}: {law.target_.get('label', law.target_['name'])}\n{law.predictors_.name}{status}"
        rows = predicted[predicted["law"] == law.name] if len(predicted) else predicted
        panels.append({"title": title, "xlabel": xlabel, "data": _panel_data(law, rows)})
    return panels
