"""The data of an experiment: the downstream-target CSV joined to the score table on the model name,
the experiment's model filter, and the targets' normalisation to [0, 1] by their range."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd

from obsscale.capability import scores as D
from obsscale.core.errors import did_you_mean

log = logging.getLogger(__name__)

# ---------------------------------------------------------------------------------------------------
# Data


def read_target_table(path: str | os.PathLike, join: str, targets: list[dict]) -> pd.DataFrame:
    """Read a downstream-target CSV: the join column and every target column, numbers within
    [min(0, floor), ceiling] of the target's declared range.  Errors name file, line and column."""
    path = Path(path)
    if not path.exists():
        raise D.ScoreTableError(path, "target CSV not found")
    df = D.read_csv_strict(path)
    needed = [join] + [t["column"] for t in targets]
    for col in needed:
        if col not in df.columns:
            raise D.ScoreTableError(path, f"column '{col}' missing{did_you_mean(col, df.columns)}; header: {list(df.columns)}",
                                    line=df.attrs["header_line"], column=col)
    blank = df[join].isna() | (df[join].astype(str).str.strip() == "")
    if blank.any():
        raise D.ScoreTableError(path, "model name is empty", line=D.csv_line(int(np.flatnonzero(blank)[0]), df),
                                column=join)
    df[join] = df[join].str.strip()
    dup = df[join].duplicated()
    if dup.any():
        pos = int(np.flatnonzero(dup.to_numpy())[0])
        raise D.ScoreTableError(path, f"duplicate model '{df[join].iloc[pos]}'", line=D.csv_line(pos, df), column=join)
    out = df[[join]].copy()
    for t in targets:
        lo, hi = t.get("valid_range") or (min(0.0, float(t["range"][0])), t["range"][1])
        out[t["column"]] = D._numeric(path, df, t["column"], float(lo), float(hi))
    return out


def experiment_frame(spec: dict, scores_csv, families: D.Families, target_csv,
                     scores: pd.DataFrame | None = None) -> pd.DataFrame:
    """The score table's model set joined (inner, on the model name) with the target CSV.
    `scores`: the table as `read_score_table` read it with these metrics or more, when the caller
    has it (the config check reads each table once for all experiments)."""
    data = spec["data"]
    if scores is None:
        scores = D.read_score_table(scores_csv, spec["metrics"], families)
    include_prereg = spec["preregistered"] != "exclude"
    models = D.select_models(scores, families, family_list=data["families"],
                             include_misc_families=data.get("include_misc_families", False),
                             include_preregistered=include_prereg)
    if data.get("exclude_families"):
        models = models[~models[D.FAMILY].isin(data["exclude_families"])]
    if data.get("only_families"):
        models = models[models[D.FAMILY].isin(data["only_families"])]
    targets = read_target_table(target_csv, data["join"], spec["targets"])
    if data["join"] != D.MODEL:
        targets = targets.rename(columns={data["join"]: D.MODEL})
    unmatched = sorted(set(targets[D.MODEL]) - set(scores[D.MODEL]))
    if unmatched:
        log.warning("%s: %d target rows match no model of the score table (e.g. %s)",
                    target_csv, len(unmatched), unmatched[:3])
    no_row = sorted(set(models[D.MODEL]) - set(targets[D.MODEL]))
    if no_row:
        log.info("%s: %d model(s) of the model set have no row in %s and are not fitted (e.g. %s); "
                 "the prediction stage predicts them", spec["name"], len(no_row), target_csv, no_row[:3])
    frame = models.merge(targets, on=D.MODEL, how="inner", suffixes=("", " (target)"))
    frame["preregistered"] = D.is_preregistered(frame, families).to_numpy()
    if frame.empty:
        raise D.ScoreTableError(target_csv, f"no model of the target CSV is in the model set of experiment "
                                f"'{spec['name']}' (join on '{data['join']}')")
    return frame.reset_index(drop=True)


def normalise_target(values, rng) -> np.ndarray:
    """`minmax_norm`: (y − floor)/(ceiling − floor), floor = random-guess level."""
    lo, hi = rng
    return (np.asarray(values, float) - lo) / (hi - lo)
