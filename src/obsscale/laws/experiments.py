"""Experiments: a downstream target, a model set and a law, declared in the config and fitted here.

An experiment block (config `experiments.<name>`, documented in docs/laws.md) names the score table,
a CSV of downstream targets joined to it on the model name, each target's column and range, the
capability-space metrics, the predictor sets, the link and estimator, the split, the reference family
of the equivalent-compute axis and how preregistered models are handled.  `run_experiment` fits every
(target, predictor set) pair, following the paper's order (spec §5.9):

    filter models → normalise y, drop missing y → split → hold preregistered models out of training
    → imputation + PCA fitted on the training models → predictors (PCs or log10 compute; rows with a
    missing predictor dropped) → fit the law → equivalent-compute axis → metrics, bands.

Nothing here is specific to the paper's tasks: a new target is a CSV and a config block.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import os
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from obsscale import __version__
from obsscale.capability import scores as D
from obsscale.capability.space import CapabilitySpace
from obsscale.core.io import file_sha256, provenance, write_csv, write_json
from obsscale.core.errors import ConfigError, did_you_mean
from obsscale.laws.law import (LINKS, OPTIMISERS, ObservationalScalingLaw, ReferenceLine, area_under_error, bootstrap_law,
                           format_form, get_link, mae, mse, percentile_band)
from obsscale.laws.splits import SPLITS, describe_split, split_models

log = logging.getLogger(__name__)

# Settings every experiment inherits unless its block overrides them.
DEFAULTS: dict[str, Any] = {
    "predictors": ["PC-1..3"],
    "main_predictors": "PC-1..3",
    "link": "sigmoid",
    "estimator": "least_squares",
    "huber_delta": 1.0,
    "n_starts": 4,
    "divergence_threshold": 10.0,
    "split": {"by": "cutoff", "column": D.FLOPS, "reference_model": "meta-llama/Llama-2-7b-hf"},
    "reference_family": "Llama-2",
    "reference_fit_set": "all",
    "extra_reference_families": [],
    "preregistered": "holdout_test",
    "n_boot": 100,
    "band_level": 0.95,
    "sweeps": {},
}
PREREG_HANDLING = ("holdout_test", "exclude", "train")
ROLES = ("train", "test", "preregistered")


# ---------------------------------------------------------------------------------------------------
# Predictor sets


@dataclass(frozen=True)
class PredictorSet:
    """First `k` principal components, or log10 of one compute column."""

    name: str
    kind: str  # "pcs" | "compute"
    k: int = 0
    column: str = ""

    @property
    def label(self) -> str:
        if self.kind == "pcs":
            return "PC-1" if self.k == 1 else f"PC-1..{self.k}"
        return {D.FLOPS: "log10 FLOPs", D.SIZE: "log10 size"}.get(self.column, f"log10 {self.column}")


COMPUTE_PREDICTORS = {"log10_flops": D.FLOPS, "log10_size": D.SIZE}
_PC = re.compile(r"^PC-1(?:\.\.(\d+))?$")


def parse_predictors(name: str) -> PredictorSet:
    m = _PC.match(str(name))
    if m:
        return PredictorSet(name, "pcs", int(m.group(1) or 1))
    if name in COMPUTE_PREDICTORS:
        return PredictorSet(name, "compute", column=COMPUTE_PREDICTORS[name])
    options = ["PC-1", "PC-1..2", "PC-1..3", "PC-1..4", *COMPUTE_PREDICTORS]
    raise ConfigError(
        f"unknown predictor set '{name}' (use PC-1..K, log10_flops or log10_size){did_you_mean(name, options)}"
    )


# ---------------------------------------------------------------------------------------------------
# Config validation: every message names the key path.


def _err(path: str, msg: str) -> ConfigError:
    return ConfigError(f"config {path}: {msg}")


def resolve_experiment(name: str, block: dict, config: dict) -> dict:
    """An experiment block with defaults filled in and every name checked against its registry."""
    path = f"experiments.{name}"
    if not isinstance(block, dict):
        raise _err(path, "must be a mapping")
    spec = copy.deepcopy(DEFAULTS)
    # The capability space of every law is built like the configured one (imputation, #PCs stored).
    cs = config.get("capability_space", {}) or {}
    for key in ("imputation", "n_components"):
        if key in cs:
            spec[key] = copy.deepcopy(cs[key])
    spec.update(copy.deepcopy(config.get("laws", {}) or {}))
    spec.update(copy.deepcopy(block))
    spec["name"] = name
    data = spec.get("data")
    if not isinstance(data, dict):
        raise _err(path, "needs a 'data' block (scores, targets_csv)")
    scores = config.get("scores", {})
    if data.get("scores") not in scores:
        raise _err(f"{path}.data.scores", f"'{data.get('scores')}' is not a score table of `scores:` "
                   f"(known: {sorted(scores)}){did_you_mean(data.get('scores'), scores)}")
    if "targets_csv" not in data:
        raise _err(f"{path}.data", "needs 'targets_csv' (the CSV with the downstream target columns)")
    data.setdefault("join", D.MODEL)
    data.setdefault("families", "eval_base")
    if data["families"] not in ("eval_base", "eval_instruct", "all"):
        raise _err(f"{path}.data.families", f"'{data['families']}' is not one of eval_base, eval_instruct, all")
    spec["metrics"] = list(spec.get("metrics") or scores[data["scores"]]["metrics"])
    unknown = [m for m in spec["metrics"] if m not in scores[data["scores"]]["metrics"]]
    if unknown:
        raise _err(f"{path}.metrics", f"{unknown} are not metrics of score table '{data['scores']}' "
                   f"({scores[data['scores']]['metrics']})")
    targets = spec.get("targets")
    if not isinstance(targets, list) or not targets:
        raise _err(f"{path}.targets", "needs a non-empty list of targets")
    seen = set()
    for i, t in enumerate(targets):
        tp = f"{path}.targets[{i}]"
        if not isinstance(t, dict) or "column" not in t:
            raise _err(tp, "needs at least 'column' (the target's column in targets_csv)")
        t.setdefault("name", re.sub(r"[^A-Za-z0-9_]+", "_", str(t["column"])).strip("_"))
        t.setdefault("label", t["name"])
        rng = t.setdefault("range", [0.0, 1.0])
        if (not isinstance(rng, (list, tuple)) or len(rng) != 2
                or not all(isinstance(v, (int, float)) for v in rng) or not rng[0] < rng[1]):
            raise _err(f"{tp}.range", f"must be [floor, ceiling] with floor < ceiling, got {rng!r}")
        vr = t.get("valid_range")
        if vr is not None and (not isinstance(vr, (list, tuple)) or len(vr) != 2 or not vr[0] < vr[1]):
            raise _err(f"{tp}.valid_range", f"must be [low, high] with low < high, got {vr!r}")
        if t["name"] in seen:
            raise _err(f"{tp}.name", f"duplicate target name '{t['name']}'")
        seen.add(t["name"])
        if "split" in t:
            _check_split(t["split"], f"{tp}.split")
    for i, p in enumerate(spec["predictors"]):
        try:
            parse_predictors(p)
        except ConfigError as exc:
            raise _err(f"{path}.predictors[{i}]", str(exc)) from None
    if spec["main_predictors"] not in spec["predictors"]:
        spec["main_predictors"] = spec["predictors"][0]
    for key, reg, what in (("link", LINKS, "link function"), ("estimator", OPTIMISERS, "estimator")):
        if spec[key] not in reg:
            raise _err(f"{path}.{key}", f"unknown {what} '{spec[key]}' (known: {sorted(reg)}){did_you_mean(spec[key], reg)}")
    _check_split(spec["split"], f"{path}.split")
    if spec["preregistered"] not in PREREG_HANDLING:
        raise _err(f"{path}.preregistered", f"'{spec['preregistered']}' is not one of {PREREG_HANDLING}")
    if spec["reference_fit_set"] not in ("all", "train"):
        raise _err(f"{path}.reference_fit_set", "must be 'all' or 'train'")
    for sname, sweep in (spec.get("sweeps") or {}).items():
        _check_split(sweep.get("split", {}), f"{path}.sweeps.{sname}.split")
        r = sweep.get("test_ratios", {})
        if not {"start", "stop", "num"} <= set(r):
            raise _err(f"{path}.sweeps.{sname}.test_ratios", "needs start, stop, num")
        unknown = sorted(set(sweep.get("targets") or []) - {t["name"] for t in targets})
        if unknown:
            raise _err(f"{path}.sweeps.{sname}.targets", f"{unknown} are not targets of this experiment")
    return spec


def _check_split(split, path):
    if not isinstance(split, dict) or split.get("by") not in SPLITS:
        by = split.get("by") if isinstance(split, dict) else split
        raise _err(path, f"unknown split '{by}' (known: {sorted(SPLITS)}){did_you_mean(by, SPLITS)}")


# ---------------------------------------------------------------------------------------------------
# Data


def read_target_table(path: str | os.PathLike, join: str, targets: list[dict]) -> pd.DataFrame:
    """Read a downstream-target CSV: the join column and every target column, numbers within
    [min(0, floor), ceiling] of the target's declared range.  Errors name file, line and column."""
    path = Path(path)
    if not path.exists():
        raise D.ScoreTableError(path, "target CSV not found")
    try:
        df = pd.read_csv(path, dtype=str)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise D.ScoreTableError(path, f"cannot be parsed as CSV: {exc}") from None
    needed = [join] + [t["column"] for t in targets]
    for col in needed:
        if col not in df.columns:
            raise D.ScoreTableError(path, f"column '{col}' missing{did_you_mean(col, df.columns)}; header: {list(df.columns)}",
                                    line=1, column=col)
    blank = df[join].isna() | (df[join].astype(str).str.strip() == "")
    if blank.any():
        raise D.ScoreTableError(path, "model name is empty", line=D.csv_line(int(np.flatnonzero(blank)[0])),
                                column=join)
    df[join] = df[join].str.strip()
    dup = df[join].duplicated()
    if dup.any():
        pos = int(np.flatnonzero(dup.to_numpy())[0])
        raise D.ScoreTableError(path, f"duplicate model '{df[join].iloc[pos]}'", line=D.csv_line(pos), column=join)
    out = df[[join]].copy()
    for t in targets:
        lo, hi = t.get("valid_range") or (min(0.0, float(t["range"][0])), t["range"][1])
        out[t["column"]] = D._numeric(path, df, t["column"], float(lo), float(hi))
    return out


def experiment_frame(spec: dict, scores_csv, families: D.Families, target_csv) -> pd.DataFrame:
    """The score table's model set joined (inner, on the model name) with the target CSV."""
    data = spec["data"]
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


# ---------------------------------------------------------------------------------------------------
# One fit


@dataclass
class TargetFit:
    """Everything learned for one (target, predictor set) on one split."""

    target: dict
    predictors: PredictorSet
    frame: pd.DataFrame          # rows with y, role, x columns
    law: ObservationalScalingLaw | None
    space: CapabilitySpace | None
    X: np.ndarray                # predictors of frame rows (NaN where missing)
    y: np.ndarray
    role: np.ndarray
    reference: ReferenceLine | None = None
    extra_references: list = field(default_factory=list)
    boot: Any = None
    error: str = ""


def _law_for(spec) -> ObservationalScalingLaw:
    return ObservationalScalingLaw(link=spec["link"], estimator=spec["estimator"], huber_delta=spec["huber_delta"],
                                   n_starts=spec["n_starts"], divergence_threshold=spec["divergence_threshold"])


def split_roles(frame: pd.DataFrame, spec: dict, target: dict, y: np.ndarray, split=None) -> np.ndarray:
    train = split_models(frame, split or target.get("split") or spec["split"], y).to_numpy()
    role = np.where(train, "train", "test").astype(object)
    if spec["preregistered"] == "holdout_test":
        role[frame["preregistered"].to_numpy()] = "preregistered"
    return role


def predictor_matrix(frame, pset: PredictorSet, space: CapabilitySpace | None) -> np.ndarray:
    if pset.kind == "pcs":
        return space.transform(frame).to_numpy()[:, : pset.k]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log10(frame[pset.column].to_numpy(float) + 1e-9).reshape(-1, 1)


def fit_target(frame: pd.DataFrame, spec: dict, target: dict, pset: PredictorSet, split=None,
               n_boot: int | None = None, references: bool = True, n_starts: int | None = None,
               cache: dict | None = None, train_models=None) -> TargetFit:
    """Fit one law.  `cache` shares the capability space between predictor sets of the same target
    and split (the PCA depends only on the training models, not on K).

    `train_models` (model names) restricts training to a subset, e.g. a selected model subset
    (paper §5): training-side models outside it get role "discarded" and are neither fitted nor
    scored; the test side is unchanged."""
    y_all = normalise_target(frame[target["column"]], target["range"])
    keep = np.isfinite(y_all)
    frame = frame.loc[keep].reset_index(drop=True)
    y = y_all[keep]
    role = split_roles(frame, spec, target, y, split)
    if train_models is not None:
        role[(role == "train") & ~frame[D.MODEL].isin(set(train_models)).to_numpy()] = "discarded"
    train = role == "train"
    space = None
    if pset.kind == "pcs":
        n_train = int(train.sum())
        if n_train <= 1:
            return TargetFit(target, pset, frame, None, None, np.full((len(y), 1), np.nan), y, role,
                             error=f"only {n_train} training model(s)")
        key = (target["name"], repr(split or target.get("split") or spec["split"]),
               None if train_models is None else tuple(sorted(train_models)))
        if cache is not None and key in cache:
            space, pcs = cache[key]
        else:
            space = CapabilitySpace(spec["metrics"], n_components=min(spec.get("n_components", 5), len(spec["metrics"])),
                                    imputation=spec.get("imputation")).fit(frame.loc[train])
            pcs = space.transform(frame).to_numpy()
            if cache is not None:
                cache[key] = (space, pcs)
        X = pcs[:, : pset.k]
    else:
        X = predictor_matrix(frame, pset, None)
    ok = np.isfinite(X).all(axis=1)
    fit_rows = train & ok
    result = TargetFit(target, pset, frame, None, space, X, y, role)
    if fit_rows.sum() < pset.k + 2 or np.unique(y[fit_rows]).size < 2:
        result.error = (f"too few training models to fit: {int(fit_rows.sum())} with finite predictors, "
                        f"{np.unique(y[fit_rows]).size} distinct target value(s)")
        log.warning("%s / %s / %s: %s; not fitted", spec["name"], target["name"], pset.name, result.error)
        return result
    law = _law_for(spec)
    if n_starts is not None:
        law.set_params(n_starts=n_starts)
    law.fit(X[fit_rows], y[fit_rows])
    result.law = law
    for w in law.warnings_:
        log.warning("%s / %s / %s: %s", spec["name"], target["name"], pset.name, w)
    if references and pset.kind == "pcs":
        result.reference = _reference_line(result, spec, spec["reference_family"])
        result.extra_references = [r for r in (_reference_line(result, spec, f)
                                               for f in spec.get("extra_reference_families", [])) if r is not None]
    n_boot = spec["n_boot"] if n_boot is None else n_boot
    if n_boot:
        result.boot = bootstrap_law(law, X[fit_rows], y[fit_rows], n_boot=n_boot, level=spec["band_level"])
    return result


def _reference_rows(fit: TargetFit, spec: dict, family: str) -> np.ndarray:
    rows = (fit.frame[D.FAMILY] == family).to_numpy() & np.isfinite(fit.X).all(axis=1)
    if spec["reference_fit_set"] == "train":
        rows &= fit.role == "train"
    return rows


def _reference_line(fit: TargetFit, spec: dict, family: str) -> ReferenceLine | None:
    rows = _reference_rows(fit, spec, family)
    try:
        return ReferenceLine.fit(family, fit.law.decision_function(fit.X[rows]),
                                 D.log10_flops(fit.frame.loc[rows, D.FLOPS].to_numpy(float)),
                                 fit.frame.loc[rows, D.MODEL].tolist())
    except ValueError as exc:
        log.warning("%s / %s / %s: no equivalent-compute axis: %s", spec["name"], fit.target["name"],
                    fit.predictors.name, exc)
        return None


def _x_axis(fit: TargetFit) -> np.ndarray:
    """What a fit figure puts on x: log10 reference-equivalent FLOPs for PC laws, log10 compute for
    baselines."""
    if fit.predictors.kind == "compute":
        return fit.X[:, 0]
    if fit.reference is None:
        return np.full(len(fit.y), np.nan)
    return fit.reference.equivalent_log10_flops(fit.law.decision_function(np.nan_to_num(fit.X)))


def curve(fit: TargetFit, ref: ReferenceLine | None = None, n: int = 100, margin: float = 0.05) -> pd.DataFrame:
    """The fitted law on a grid of the x axis, with its bootstrap band."""
    ref = ref or fit.reference
    law = fit.law
    link = get_link(law.link)
    if fit.predictors.kind == "compute":
        x = fit.X[:, 0]
    elif ref is not None:
        x = ref.equivalent_log10_flops(law.decision_function(np.nan_to_num(fit.X)))
    else:
        return pd.DataFrame()
    x = x[np.isfinite(x)]
    lo, hi = x.min(), x.max()
    grid = np.linspace(lo - margin * (hi - lo), hi + margin * (hi - lo), n)
    if fit.predictors.kind == "compute":
        yhat = law.predict(grid.reshape(-1, 1))
        band_lo, band_hi = fit.boot.band(grid.reshape(-1, 1)) if fit.boot is not None else (grid * np.nan,) * 2
        d_lo, d_hi = law.predict_delta_band(grid.reshape(-1, 1))
    else:
        extra = law.params_[law.n_features_in_ + 1:]
        yhat = link.function(ref.slope * grid + ref.intercept, extra)
        band_lo = band_hi = grid * np.nan
        if fit.boot is not None:
            # Each refit has its own capability index, hence its own reference line.
            rows = _reference_rows(fit, {"reference_fit_set": "all"}, ref.family) & \
                fit.frame[D.MODEL].isin(ref.models).to_numpy()
            lx = D.log10_flops(fit.frame.loc[rows, D.FLOPS].to_numpy(float))
            samples = []
            for p in fit.boot.params:
                if not np.isfinite(p).all():
                    continue
                P = p[0] + fit.X[rows] @ p[1: law.n_features_in_ + 1]
                w, b = np.polyfit(lx, P, 1)
                samples.append(link.function(w * grid + b, p[law.n_features_in_ + 1:]))
            if samples:
                band_lo, band_hi = percentile_band(np.array(samples), fit.boot.level)
        d_lo = d_hi = grid * np.nan
    return pd.DataFrame({"x": grid, "y_hat": yhat, "band_lo": band_lo, "band_hi": band_hi,
                         "delta_lo": d_lo, "delta_hi": d_hi, "reference_family": ref.family if ref else ""})


# ---------------------------------------------------------------------------------------------------
# A whole experiment


def _fit_row(spec, fit: TargetFit, common: set) -> dict:
    t, ps = fit.target, fit.predictors
    row = {"experiment": spec["name"], "target": t["name"], "label": t["label"], "column": t["column"],
           "predictors": ps.name, "link": spec["link"], "estimator": spec["estimator"],
           "split": describe_split(t.get("split") or spec["split"])}
    ok = np.isfinite(fit.X).all(axis=1)
    roles = {r: (fit.role == r) & ok for r in ROLES}
    test_all = roles["test"] | roles["preregistered"]
    row.update(n_train=int(roles["train"].sum()), n_test=int(test_all.sum()), n_prereg=int(roles["preregistered"].sum()),
               n_test_missing_predictor=int(((fit.role != "train") & ~ok).sum()))
    if fit.law is None:
        row.update(status="not_fitted", warning=fit.error)
        return row
    law = fit.law
    yhat = np.full(len(fit.y), np.nan)
    yhat[ok] = law.predict(fit.X[ok])
    in_common = fit.frame[D.MODEL].isin(common).to_numpy() & test_all
    row.update(
        mse_train=mse(fit.y[roles["train"]], yhat[roles["train"]]), mae_train=mae(fit.y[roles["train"]], yhat[roles["train"]]),
        mse_test=mse(fit.y[test_all], yhat[test_all]), mae_test=mae(fit.y[test_all], yhat[test_all]),
        mse_prereg=mse(fit.y[roles["preregistered"]], yhat[roles["preregistered"]]),
        n_test_common=int(in_common.sum()),
        mse_test_common=mse(fit.y[in_common], yhat[in_common]), mae_test_common=mae(fit.y[in_common], yhat[in_common]),
        h=law.h_, alpha=law.intercept_,
    )
    for i, c in enumerate(law.coef_):
        row[f"beta_{i + 1}"] = c
    if ps.kind == "compute":
        row.update(eq_family="", eq_slope=law.coef_[0], eq_intercept=law.intercept_, eq_r2=np.nan, eq_fit_models="",
                   form=format_form(law.coef_, law.intercept_, law.h_, ["x"]))
    elif fit.reference is not None:
        r = fit.reference
        row.update(eq_family=r.family, eq_slope=r.slope, eq_intercept=r.intercept, eq_r2=r.r2,
                   eq_fit_models=";".join(r.models), form=format_form([r.slope], r.intercept, law.h_, ["x"]))
    else:
        row.update(eq_family=spec["reference_family"], eq_slope=np.nan, eq_intercept=np.nan, eq_r2=np.nan,
                   eq_fit_models="", form="")
    if ps.kind == "pcs":
        row["form_pcs"] = format_form(law.coef_, law.intercept_, law.h_, [f" PC{i + 1}" for i in range(ps.k)])
        gamma = fit.space.pca_.components_[: ps.k]
        weights = law.coef_ @ gamma
        for m, w in zip(spec["metrics"], weights):
            row[f"weight_{m}"] = w
        # In metric space: P = (α − βᵀγμ) + (βᵀγ)·B.
        row["metric_intercept"] = law.intercept_ - float(weights @ fit.space.pca_.mean_)
    row.update(status=law.status_, converged=law.converged_, warning=" | ".join(law.warnings_),
               n_boot_ok=int(np.isfinite(fit.boot.params).all(axis=1).sum()) if fit.boot is not None else 0)
    return row


def _prediction_rows(spec, fit: TargetFit, common: set) -> pd.DataFrame:
    ok = np.isfinite(fit.X).all(axis=1)
    out = pd.DataFrame({
        "experiment": spec["name"], "target": fit.target["name"], "predictors": fit.predictors.name,
        D.MODEL: fit.frame[D.MODEL], D.FAMILY: fit.frame[D.FAMILY], "role": fit.role,
        "log10_flops": D.log10_flops(fit.frame[D.FLOPS].to_numpy(float)) if D.FLOPS in fit.frame else np.nan,
        "y": fit.y,
    })
    out = out.loc[ok].reset_index(drop=True)
    if fit.law is None:
        return out
    X = fit.X[ok]
    out["index"] = fit.law.decision_function(X)
    out["x"] = _x_axis(fit)[ok]
    out["y_hat"] = fit.law.predict(X)
    if fit.boot is not None:
        out["band_lo"], out["band_hi"] = fit.boot.band(X)
    out["delta_lo"], out["delta_hi"] = fit.law.predict_delta_band(X)
    out["in_common_test"] = out[D.MODEL].isin(common) & (out["role"] != "train")
    out["status"] = fit.law.status_
    return out


def run_experiment(spec: dict, scores_csv, families_yaml, target_csv) -> dict[str, Any]:
    """Fit every (target, predictor set) of an experiment; return the tables and the fits."""
    families = D.load_families(families_yaml)
    frame = experiment_frame(spec, scores_csv, families, target_csv)
    psets = [parse_predictors(p) for p in spec["predictors"]]
    fits_rows, preds, curves, refs, fits = [], [], [], [], {}
    for target in spec["targets"]:
        cache: dict = {}
        tfits = [fit_target(frame, spec, target, ps, cache=cache) for ps in psets]
        # The intersected test set: test models every predictor set can score.
        common = None
        for f in tfits:
            ok = np.isfinite(f.X).all(axis=1) & (f.role != "train")
            names = set(f.frame.loc[ok, D.MODEL])
            common = names if common is None else common & names
        common = common or set()
        for f in tfits:
            fits[(target["name"], f.predictors.name)] = f
            fits_rows.append(_fit_row(spec, f, common))
            preds.append(_prediction_rows(spec, f, common))
            if f.law is None:
                continue
            for ref in [f.reference, *f.extra_references] if f.predictors.kind == "pcs" else [None]:
                if f.predictors.kind == "pcs" and ref is None:
                    continue
                c = curve(f, ref)
                if not c.empty:
                    c.insert(0, "predictors", f.predictors.name)
                    c.insert(0, "target", target["name"])
                    c.insert(0, "experiment", spec["name"])
                    curves.append(c)
                if ref is not None:
                    refs.append({"experiment": spec["name"], "target": target["name"], "predictors": f.predictors.name,
                                 "family": ref.family, "slope": ref.slope, "intercept": ref.intercept, "r2": ref.r2,
                                 "models": ";".join(ref.models),
                                 "form": format_form([ref.slope], ref.intercept, f.law.h_, ["x"])})
    sweeps = run_sweeps(spec, frame, psets)
    return {"frame": frame, "fits": fits, "fits_table": pd.DataFrame(fits_rows),
            "predictions": pd.concat(preds, ignore_index=True),
            "curves": pd.concat(curves, ignore_index=True) if curves else pd.DataFrame(),
            "references": pd.DataFrame(refs), "sweeps": sweeps}


def run_sweeps(spec: dict, frame: pd.DataFrame, psets) -> pd.DataFrame:
    """Test error against the test-set ratio (paper Figs C.10, C.11): refit at each ratio."""
    rows = []
    for sname, sweep in (spec.get("sweeps") or {}).items():
        r = sweep["test_ratios"]
        ratios = np.linspace(float(r["start"]), float(r["stop"]), int(r["num"]))
        only = sweep.get("targets")
        for target in spec["targets"]:
            if only and target["name"] not in only:
                continue
            cache: dict = {}
            for ps in psets:
                for ratio in ratios:
                    split = dict(sweep["split"], test_fraction=float(ratio))
                    # A failing fit at one ratio is recorded in the table (status), not logged 100 times.
                    quiet = [logging.getLogger(n) for n in (__name__, "obsscale.laws.law")]
                    prev = [q.level for q in quiet]
                    for q in quiet:
                        q.setLevel(logging.ERROR)
                    try:
                        f = fit_target(frame, spec, target, ps, split=split, n_boot=0, references=False,
                                       n_starts=1, cache=cache)
                    finally:
                        for q, lv in zip(quiet, prev):
                            q.setLevel(lv)
                    row = {"experiment": spec["name"], "sweep": sname, "target": target["name"],
                           "predictors": ps.name, "test_ratio": ratio}
                    if f.law is None:
                        rows.append(dict(row, status="not_fitted"))
                        continue
                    ok = np.isfinite(f.X).all(axis=1)
                    test = ok & (f.role != "train")
                    rows.append(dict(row, n_train=int(((f.role == "train") & ok).sum()), n_test=int(test.sum()),
                                     mse_test=mse(f.y[test], f.law.predict(f.X[test])), status=f.law.status_))
    df = pd.DataFrame(rows)
    if not df.empty:
        good = df["status"].isin(["ok", "degenerate"])
        if (~good).any():
            log.warning("%s: %d of %d sweep fits diverged or failed; they are left out of the AUE "
                        "(see the status column of sweeps.csv)", spec["name"], int((~good).sum()), len(df))
        aue = (df[good].groupby(["sweep", "target", "predictors"], sort=False)
               .apply(lambda g: area_under_error(g["test_ratio"], g["mse_test"]), include_groups=False)
               .rename("aue").reset_index())
        df = df.merge(aue, on=["sweep", "target", "predictors"], how="left")
    return df


# ---------------------------------------------------------------------------------------------------
# Preregistration: freeze a law with its capability space; score newer models against it unchanged.


def _state(obj) -> dict:
    out = {"class": type(obj).__name__, "params": {}, "learned": {}}
    for k, v in vars(obj).items():
        if k.startswith("_"):
            continue
        if isinstance(v, np.ndarray):
            v = v.tolist() if v.dtype != object else [str(x) for x in v]
        elif isinstance(v, (np.floating, np.integer, np.bool_)):
            v = v.item()
        elif not isinstance(v, (int, float, str, bool, list, tuple, dict, type(None))):
            continue
        (out["learned"] if k.endswith("_") else out["params"])[k] = v
    return out


def _restore(cls, state: dict):
    obj = cls(**state["params"])
    for k, v in state["learned"].items():
        setattr(obj, k, np.asarray(v) if isinstance(v, list) else v)
    return obj


def data_hash(*paths) -> str:
    h = hashlib.sha256()
    for p in paths:
        h.update(file_sha256(p).encode())
    return h.hexdigest()


def freeze_experiment(spec: dict, result: dict, scores_csv, target_csv, families_yaml) -> dict:
    laws = []
    for (tname, pname), f in result["fits"].items():
        if f.law is None:
            continue
        entry = {"target": f.target, "predictors": pname, "link": f.law.link, "estimator": f.law.estimator,
                 "params": f.law.params_.tolist(), "h": f.law.h_, "status": f.law.status_,
                 "training_models": f.frame.loc[f.role == "train", D.MODEL].tolist()}
        if f.space is not None:
            entry["capability_space"] = {"metrics": list(spec["metrics"]),
                                         "imputer": _state(f.space.imputer_), "pca": _state(f.space.pca_)}
        if f.reference is not None:
            r = f.reference
            entry["reference_line"] = {"family": r.family, "slope": r.slope, "intercept": r.intercept,
                                       "r2": r.r2, "models": r.models}
        laws.append(entry)
    return {"experiment": spec["name"], "frozen": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "obsscale_version": __version__, "data_sha256": data_hash(scores_csv, target_csv, families_yaml),
            "spec": {k: v for k, v in spec.items() if k != "sweeps"}, "laws": laws,
            "provenance": provenance({"scores": scores_csv, "targets": target_csv, "families": families_yaml})}


def frozen_law(entry: dict) -> tuple[ObservationalScalingLaw, CapabilitySpace | None]:
    """Rebuild a frozen law (and its capability space) exactly as registered; nothing is refitted."""
    law = ObservationalScalingLaw(link=entry["link"], estimator=entry["estimator"])
    p = np.asarray(entry["params"], float)
    link = get_link(entry["link"])
    K = len(p) - 1 - link.n_extra
    law.params_, law.intercept_, law.coef_ = p, float(p[0]), p[1: K + 1]
    law.h_, law.n_features_in_, law.status_, law.converged_ = link.height(p[K + 1:]), K, entry["status"], True
    space = None
    if "capability_space" in entry:
        from obsscale.capability.impute import PCAImputer
        from obsscale.capability.pca import CapabilityPCA

        cs = entry["capability_space"]
        space = CapabilitySpace(cs["metrics"])
        space.imputer_ = _restore(PCAImputer, cs["imputer"])
        space.pca_ = _restore(CapabilityPCA, cs["pca"])
        if getattr(space.pca_, "feature_names_in_", None) is not None:
            space.pca_.feature_names_in_ = np.asarray(space.pca_.feature_names_in_, dtype=object)
    return law, space


def score_frozen(prereg: dict, scores_csv, target_csv, families_yaml) -> pd.DataFrame:
    """Predict every model not used in a frozen law's training set, with the law unchanged."""
    spec = dict(prereg["spec"], preregistered="train")
    families = D.load_families(families_yaml)
    frame = experiment_frame(spec, scores_csv, families, target_csv)
    rows = []
    for entry in prereg["laws"]:
        law, space = frozen_law(entry)
        t = entry["target"]
        pset = parse_predictors(entry["predictors"])
        y = normalise_target(frame[t["column"]], t["range"])
        new = ~frame[D.MODEL].isin(entry["training_models"]).to_numpy() & np.isfinite(y)
        sub = frame.loc[new]
        if sub.empty:
            continue
        X = predictor_matrix(sub, pset, space)
        ok = np.isfinite(X).all(axis=1)
        yhat = np.full(len(sub), np.nan)
        yhat[ok] = law.predict(X[ok])
        rows.append(pd.DataFrame({"experiment": prereg["experiment"], "target": t["name"], "predictors": pset.name,
                                  D.MODEL: sub[D.MODEL].to_numpy(), D.FAMILY: sub[D.FAMILY].to_numpy(),
                                  "preregistered": sub["preregistered"].to_numpy(), "y": y[new], "y_hat": yhat,
                                  "squared_error": (y[new] - yhat) ** 2, "frozen": prereg["frozen"],
                                  "data_sha256_frozen": prereg["data_sha256"]}))
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()


def preregistered_forms(prereg_docs: list[dict]) -> pd.DataFrame:
    """Table C.1: each frozen main law in log10 equivalent FLOPs, in PCs and as metric weights."""
    rows = []
    for doc in prereg_docs:
        main = doc["spec"].get("main_predictors", "PC-1..3")
        for entry in doc["laws"]:
            if entry["predictors"] != main:
                continue
            law, space = frozen_law(entry)
            row = {"experiment": doc["experiment"], "target": entry["target"]["name"],
                   "label": entry["target"].get("label", ""), "predictors": main, "frozen": doc["frozen"]}
            r = entry.get("reference_line")
            row["form_equivalent_flops"] = format_form([r["slope"]], r["intercept"], law.h_, ["x"]) if r else ""
            row["reference_family"] = r["family"] if r else ""
            if space is not None:
                K = law.n_features_in_
                row["form_pcs"] = format_form(law.coef_, law.intercept_, law.h_, [f" PC{i + 1}" for i in range(K)])
                w = law.coef_ @ np.asarray(space.pca_.components_)[:K]
                mu = np.asarray(space.pca_.mean_)
                row["metric_intercept"] = law.intercept_ - float(w @ mu)
                terms = " ".join(f"{'−' if v < 0 else '+'} {abs(v):.2f} {m}" for m, v in zip(space.metrics, w))
                row["form_metric_weights"] = f"sigmoid({row['metric_intercept']:.2f} {terms})" if abs(law.h_ - 1) < 5e-4 \
                    else f"{law.h_:.2f}·sigmoid({row['metric_intercept']:.2f} {terms}) + {1 - law.h_:.2f}"
                for m, v in zip(space.metrics, w):
                    row[f"weight_{m}"] = v
            rows.append(row)
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------------
# Stage functions (one per rule)


def write_experiment_fits(name: str, block: dict, config: dict, scores_csv, families_yaml, target_csv,
                          fits_csv, predictions_csv, curves_csv, references_csv, sweeps_csv, prereg_json) -> dict:
    spec = resolve_experiment(name, block, config)
    result = run_experiment(spec, scores_csv, families_yaml, target_csv)
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
    write_json(freeze_experiment(spec, result, scores_csv, target_csv, families_yaml), prereg_json)
    return result


def write_prereg_scores(prereg_json, scores_csv, target_csv, families_yaml, output_csv) -> pd.DataFrame:
    import json

    doc = json.loads(Path(prereg_json).read_text())
    scored = score_frozen(doc, scores_csv, target_csv, families_yaml)
    write_csv(scored, output_csv)
    return scored


def write_preregistered_forms(prereg_jsons, output_csv) -> pd.DataFrame:
    import json

    table = preregistered_forms([json.loads(Path(p).read_text()) for p in prereg_jsons])
    write_csv(table, output_csv)
    return table


def write_preregistration(experiments: dict[str, dict[str, str]], families_yaml, table_csv) -> pd.DataFrame:
    """Stage function of rule `preregistration`: score each experiment's newer models against its
    frozen laws (unchanged) and write Table C.1 of all frozen main laws.

    `experiments` maps a name to its paths: prereg (frozen JSON), scores, targets, scored (output)."""
    import json

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
