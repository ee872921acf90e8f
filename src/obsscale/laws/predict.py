"""Predict a model: place it in each frozen law's capability space and read the law off, with a band.

    >>> import obsscale
    >>> table = obsscale.predict("my_scores.csv", laws=obsscale.load_frozen("results/prereg"))

The input is one or more rows in the score-table layout (`Model`, optionally `Model Family`, the
compute columns and benchmark columns in [0, 1]); the evaluation stage's `scores_wide.csv` is one.
The output has one row per (model, law), with the columns of `PREDICTION_COLUMNS`.  A model needs no
known family; a law needs its metric columns (PC laws) or its compute column (compute laws).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from obsscale.capability import scores as D
from obsscale.core.errors import InputError, did_you_mean
from obsscale.laws.frozen import NO_PREDICTION_STATUSES, FrozenLaw, load_frozen

log = logging.getLogger(__name__)

N_PCS = 5  # PC columns written (a law's space stores up to its configured n_components)
PREDICTION_COLUMNS = [
    "model", "family", "law", "experiment", "target", "label", "predictors", "main",
    *(f"PC-{i + 1}" for i in range(N_PCS)), "capability_index", "log10_equivalent_flops", "reference_family",
    "y_hat", "band_lo", "band_hi", "band_level", "band_method", "y_hat_raw", "band_lo_raw", "band_hi_raw",
    "imputed_metrics", "index_train_min", "index_train_max", "extrapolation_logits", "law_status", "note",
    "frozen", "data_sha256",
]


def read_prediction_scores(path: str | os.PathLike, metrics: Sequence[str] = ()) -> pd.DataFrame:
    """Read the models to predict: `Model` required and unique; `Model Family` optional (any name);
    compute columns non-negative numbers; every present column of `metrics` a number in [0, 1] or
    empty.  Errors name the file, line and column."""
    path = Path(path)
    if not path.exists():
        raise D.ScoreTableError(path, "file not found")
    try:
        df = pd.read_csv(path, dtype=str)
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise D.ScoreTableError(path, f"cannot be parsed as CSV: {exc}") from None
    except pd.errors.EmptyDataError:
        raise D.ScoreTableError(path, "file is empty") from None
    return check_prediction_scores(df, path, metrics)


def check_prediction_scores(df: pd.DataFrame, source, metrics: Sequence[str] = ()) -> pd.DataFrame:
    """The checks of `read_prediction_scores` on a frame (`source` names it in errors)."""
    if D.MODEL not in df.columns:
        raise D.ScoreTableError(source, f"no '{D.MODEL}' column{did_you_mean(D.MODEL, df.columns)}; "
                                f"the header has {list(df.columns)}", line=1, column=D.MODEL)
    if df.empty:
        raise D.ScoreTableError(source, "the table has no rows")
    df = df.reset_index(drop=True).copy()
    names = df[D.MODEL].astype("string").str.strip()
    blank = names.isna() | (names == "")
    if blank.any():
        raise D.ScoreTableError(source, "value is empty", line=D.csv_line(int(np.flatnonzero(blank)[0])),
                                column=D.MODEL)
    df[D.MODEL] = names.astype(str)
    dup = df[D.MODEL].duplicated()
    if dup.any():
        pos = int(np.flatnonzero(dup.to_numpy())[0])
        raise D.ScoreTableError(source, f"duplicate model '{df[D.MODEL].iloc[pos]}'", line=D.csv_line(pos),
                                column=D.MODEL)
    df[D.FAMILY] = df[D.FAMILY].fillna("").astype(str).str.strip() if D.FAMILY in df.columns else ""
    for col in D.COMPUTE_COLUMNS:
        df[col] = D._numeric(source, df, col, 0.0, None) if col in df.columns else np.nan
    for col in dict.fromkeys(metrics):
        if col in df.columns:
            df[col] = D._numeric(source, df, col, 0.0, 1.0)
    return df


def applicable_laws(laws: Sequence[FrozenLaw], columns, strict: bool = False,
                    source: str = "the scores") -> tuple[list[FrozenLaw], dict[str, list[str]]]:
    """The laws whose input columns are all present, and {law: missing columns} for the others.
    With `strict` (laws named by the user) any missing column is an error; otherwise it is an
    error when no law is left, or no capability-space (PC) law while some were asked for: scores
    that feed only the compute baselines are missing a metric column."""
    columns = set(columns)
    ok, skipped = [], {}
    for law in laws:
        missing = [c for c in law.input_columns if c not in columns]
        if missing:
            skipped[law.name] = missing
        else:
            ok.append(law)
    wanted_pcs = any(law.predictors_.kind == "pcs" for law in laws)
    no_pcs = wanted_pcs and not any(law.predictors_.kind == "pcs" for law in ok)
    if skipped and (strict or not ok or no_pcs):
        name, missing = next(iter(skipped.items()))
        raise InputError(f"{source}: column(s) {missing} missing, needed by law {name}"
                         f"{did_you_mean(missing[0], columns)}" + (f" (and {len(skipped) - 1} other law(s))"
                                                                   if len(skipped) > 1 else ""))
    return ok, skipped


def log_skipped(skipped: dict[str, list[str]], source: str) -> None:
    """One note per set of missing columns, naming the experiments whose laws were skipped."""
    groups: dict[tuple, list[str]] = {}
    for name, missing in skipped.items():
        groups.setdefault(tuple(missing), []).append(name)
    for missing, names in groups.items():
        experiments = sorted({n.split("/")[0] for n in names})
        log.info("%d law(s) of %s skipped: %s has no column %s", len(names), ", ".join(experiments), source,
                 ", ".join(f"'{m}'" for m in missing))


def law_rows(law: FrozenLaw, scores: pd.DataFrame) -> pd.DataFrame:
    """The prediction rows of one law for every row of `scores` (columns `PREDICTION_COLUMNS`)."""
    law._columns(scores)
    n = len(scores)
    pcs = law.components(scores) if law.predictors_.kind == "pcs" else np.full((n, 0), np.nan)
    S = pcs[:, : law.predictors_.k] if law.predictors_.kind == "pcs" else law.transform(scores)
    finite = np.isfinite(S).all(axis=1)
    index = law.law_.intercept_ + S @ law.law_.coef_
    y, lo, hi = law.predict_at(S)
    t_lo, t_hi = law.target_.get("range", (0.0, 1.0))
    imin, imax = law.index_range_
    with np.errstate(invalid="ignore"):
        extra = np.where(finite, np.maximum(0.0, np.maximum(imin - index, index - imax)), np.nan)
    cols = {"model": scores[D.MODEL].to_numpy(), "family": scores[D.FAMILY].to_numpy(), "law": law.name,
            "experiment": law.experiment, "target": law.target_["name"], "label": law.target_.get("label", ""),
            "predictors": law.predictors_.name, "main": law.is_main}
    for i in range(N_PCS):
        cols[f"PC-{i + 1}"] = pcs[:, i] if i < pcs.shape[1] else np.nan
    cols.update({"capability_index": index, "log10_equivalent_flops": law.equivalent_log10_flops(index, S),
                 "reference_family": law.reference_.family if law.reference_ is not None else "",
                 "y_hat": y, "band_lo": lo, "band_hi": hi, "band_level": law.level_,
                 "band_method": law.band_method})
    for name, v in (("y_hat", y), ("band_lo", lo), ("band_hi", hi)):
        cols[f"{name}_raw"] = t_lo + v * (t_hi - t_lo)
    if law.predictors_.kind == "pcs":
        missing = np.isnan(scores[law.metrics].to_numpy(float))
        cols["imputed_metrics"] = [";".join(m for m, miss in zip(law.metrics, row) if miss) for row in missing]
    else:
        cols["imputed_metrics"] = ""
    cols.update({"index_train_min": imin, "index_train_max": imax, "extrapolation_logits": extra,
                 "law_status": law.status_, "note": [_note(law, ok, x) for ok, x in zip(finite, extra)],
                 "frozen": law.frozen, "data_sha256": law.data_sha256})
    return pd.DataFrame(cols, index=range(n))


def _note(law: FrozenLaw, finite: bool, extrapolation: float) -> str:
    if law.status_ in NO_PREDICTION_STATUSES:
        return f"law {law.status_}: no prediction"
    if not finite:
        what = f"no value of '{law.predictors_.column}'" if law.predictors_.kind == "compute" \
            else "none of the law's metrics"
        return f"{what}: no prediction"
    if extrapolation > 0:
        return f"extrapolated: {extrapolation:.2f} logits beyond the training range of the capability index"
    return ""


def predict(scores: pd.DataFrame | str | os.PathLike, laws: Sequence[FrozenLaw] | FrozenLaw | str | os.PathLike
            | None = None, *, known_families: Sequence[str] | None = None, strict: bool = False) -> pd.DataFrame:
    """Predict every model of `scores` with every frozen law of `laws`.

    `scores`: a frame in the score-table layout (or a CSV path); `laws`: frozen laws
    (`load_frozen(...)`), one law, or a path to a record or folder (default `results/prereg`).
    Laws whose metric columns the scores lack are skipped and logged (an error if none is left, or
    with `strict`, e.g. when the laws were named by the user).
    Families not in `known_families` (when given) are allowed and logged.  Returns one row per
    (model, law), columns `PREDICTION_COLUMNS`."""
    if laws is None or isinstance(laws, (str, os.PathLike)):
        laws = load_frozen(laws or "results/prereg")
    elif isinstance(laws, FrozenLaw):
        laws = [laws]
    laws = list(laws)
    if not laws:
        raise InputError("no frozen law to predict with")
    metrics = [m for law in laws for m in law.metrics]
    if isinstance(scores, (str, os.PathLike)):
        source = str(scores)
        scores = read_prediction_scores(scores, metrics)
    else:
        source = "the scores"
        scores = check_prediction_scores(scores, "the scores frame", metrics)
    usable, skipped = applicable_laws(laws, scores.columns, strict=strict, source=source)
    log_skipped(skipped, source)
    if known_families is not None:
        unknown = sorted(set(scores[D.FAMILY]) - set(known_families) - {""})
        if unknown:
            log.info("%s: families %s are not in the families file; allowed (a prediction needs no family)",
                     source, unknown)
    table = pd.concat([law_rows(law, scores) for law in usable], ignore_index=True)
    return table[PREDICTION_COLUMNS]


def summarise(table: pd.DataFrame) -> str:
    """A short text of a prediction table: per model, each main law's ŷ [95 % band] and its note
    (every law's when no main law is in the table)."""
    lines = []
    main = table[table["main"].astype(bool)]
    main = main if len(main) else table  # only non-main laws selected: show them
    width = max((len(f"{e}/{t}") for e, t in zip(main["experiment"], main["target"])), default=0) + 2
    for model, rows in main.groupby("model", sort=False):
        lines.append(f"{model}    ŷ [95 % band], normalised to each target's [floor, ceiling]")
        for _, r in rows.iterrows():
            value = "—" if pd.isna(r["y_hat"]) else f"{r['y_hat']:.3f} [{r['band_lo']:.3f}, {r['band_hi']:.3f}]"
            lines.append(f"  {r['experiment'] + '/' + r['target']:<{width}}{value:<22} {r['note']}".rstrip())
    return "\n".join(lines)
