"""One law of an experiment: a (target, predictor set) pair fitted in the paper's order (spec §5.9):

    filter models → normalise y, drop missing y → split → hold preregistered models out of training
    → imputation + PCA fitted on the training models → predictors (PCs or log10 compute; rows with a
    missing predictor dropped) → fit the law → equivalent-compute axis → metrics, bands.

`fit_target(train_models=...)` fits on a given set of models instead of a split (the model-subset
selection's held-out evaluation uses it)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from obsscale.capability import scores as D
from obsscale.capability.space import CapabilitySpace
from obsscale.core.stats import fit_line
from obsscale.laws.frame import normalise_target
from obsscale.laws.bootstrap import bootstrap_law, percentile_band
from obsscale.laws.law import ObservationalScalingLaw
from obsscale.laws.links import get_link
from obsscale.laws.reference import ReferenceLine
from obsscale.laws.spec import PredictorSet
from obsscale.laws.splits import split_models

log = logging.getLogger(__name__)

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
                                   n_starts=spec["n_starts"], divergence_threshold=spec["divergence_threshold"],
                                   random_state=int(spec.get("seed", 0)))


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
               cache: dict | None = None, train_models=None, min_train_models: int | None = None) -> TargetFit:
    """Fit one law.  `cache` shares the capability space between predictor sets of the same target
    and split (the PCA depends only on the training models, not on K).

    `train_models` (model names) restricts training to a subset, e.g. a selected model subset
    (paper §5): training-side models outside it get role "discarded" and are neither fitted nor
    scored, nor used for the reference line; the test side is unchanged.  `min_train_models`
    (default K + 2) is the fewest training models a law is fitted on: the selection fits its
    smallest budgets on fewer models than parameters, as the paper does."""
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
            log.warning("%s / %s / %s: only %d training model(s); not fitted", spec["name"], target["name"],
                        pset.name, n_train)
            return TargetFit(target, pset, frame, None, None, np.full((len(y), 1), np.nan), y, role,
                             error=f"only {n_train} training model(s)")
        key = (target["name"], repr(split or target.get("split") or spec["split"]),
               None if train_models is None else tuple(sorted(train_models)))
        space, pcs = _capability_space(frame, train, spec, key, cache)
        X = pcs[:, : pset.k]
    else:
        X = predictor_matrix(frame, pset, None)
    ok = np.isfinite(X).all(axis=1)
    fit_rows = train & ok
    result = TargetFit(target, pset, frame, None, space, X, y, role)
    min_train = pset.k + 2 if min_train_models is None else min_train_models
    if fit_rows.sum() < min_train or np.unique(y[fit_rows]).size < 2:
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
        result.boot = bootstrap_law(law, X[fit_rows], y[fit_rows], n_boot=n_boot, level=spec["band_level"],
                                    random_state=int(spec.get("seed", 0)))
    return result


def _capability_space(frame: pd.DataFrame, train: np.ndarray, spec: dict, key, cache: dict | None
                      ) -> tuple[CapabilitySpace, np.ndarray]:
    """Imputation + PCA fitted on the training rows, and every row's PC scores (cached by target,
    split and training subset)."""
    if cache is not None and key in cache:
        return cache[key]
    space = CapabilitySpace(spec["metrics"], n_components=min(spec.get("n_components", 5), len(spec["metrics"])),
                            imputation=spec.get("imputation")).fit(frame.loc[train])
    result = (space, space.transform(frame).to_numpy())
    if cache is not None:
        cache[key] = result
    return result


def _reference_rows(fit: TargetFit, spec: dict, family: str) -> np.ndarray:
    rows = (fit.frame[D.FAMILY] == family).to_numpy() & np.isfinite(fit.X).all(axis=1) & (fit.role != "discarded")
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


def x_axis(fit: TargetFit) -> np.ndarray:
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
    x = x[np.isfinite(x) & (fit.role != "discarded")]
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
                line = fit_line(lx, P)
                samples.append(link.function(line.slope * grid + line.intercept, p[law.n_features_in_ + 1:]))
            if samples:
                band_lo, band_hi = percentile_band(np.array(samples), fit.boot.level)
        d_lo = d_hi = grid * np.nan
    return pd.DataFrame({"x": grid, "y_hat": yhat, "band_lo": band_lo, "band_hi": band_hi,
                         "delta_lo": d_lo, "delta_hi": d_hi, "reference_family": ref.family if ref else ""})
