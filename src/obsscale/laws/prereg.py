"""Preregistration: freeze a law with its capability space; score newer models against it unchanged."""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime, timezone

import numpy as np
import pandas as pd

from obsscale import __version__
from obsscale.capability import scores as D
from obsscale.capability.space import CapabilitySpace
from obsscale.core.io import file_sha256, provenance
from obsscale.laws.fit import predictor_matrix
from obsscale.laws.frame import experiment_frame, normalise_target
from obsscale.laws.law import ObservationalScalingLaw, format_form
from obsscale.laws.spec import parse_predictors

log = logging.getLogger(__name__)

# ---------------------------------------------------------------------------------------------------
# Preregistration: freeze a law with its capability space; score newer models against it unchanged.


def data_hash(*paths) -> str:
    h = hashlib.sha256()
    for p in paths:
        h.update(file_sha256(p).encode())
    return h.hexdigest()


# Version of the frozen-law record: 2 adds what a band needs (bootstrap draws, covariance), the
# training range of the capability index and the fitted curve with its training points (figures).
FROZEN_FORMAT = 2


def _floats(values) -> list:
    """A float array as JSON lists, NaN written as null (standard JSON)."""
    arr = np.asarray(values, float)
    return np.where(np.isfinite(arr), arr, None).tolist()


def _law_entry(spec: dict, f, result: dict) -> dict:
    law = f.law
    entry = {"target": f.target, "predictors": f.predictors.name, "link": law.link, "estimator": law.estimator,
             "params": law.params_.tolist(), "h": law.h_, "status": law.status_,
             "training_models": f.frame.loc[f.role == "train", D.MODEL].tolist(),
             "covariance": _floats(law.covariance_), "band_level": spec["band_level"]}
    if f.boot is not None:
        entry["bootstrap"] = {"params": _floats(f.boot.params), "level": f.boot.level}
    fit_rows = (f.role == "train") & np.isfinite(f.X).all(axis=1)
    index = law.decision_function(f.X[fit_rows])
    entry["index_range"] = [float(index.min()), float(index.max())] if len(index) else [None, None]
    if f.space is not None:
        entry["capability_space"] = {"metrics": list(spec["metrics"]),
                                     "imputer": f.space.imputer_.to_state(), "pca": f.space.pca_.to_state()}
    if f.reference is not None:
        r = f.reference
        entry["reference_line"] = {"family": r.family, "slope": r.slope, "intercept": r.intercept,
                                   "r2": r.r2, "models": r.models}
    ref_family = f.reference.family if f.reference is not None else ""
    curves = result.get("curves")
    if curves is not None and len(curves):
        c = curves[(curves["target"] == f.target["name"]) & (curves["predictors"] == f.predictors.name)
                   & (curves["reference_family"].fillna("") == ref_family)]
        entry["curve"] = {k: _floats(c[k]) for k in ("x", "y_hat", "band_lo", "band_hi")}
    preds = result.get("predictions")
    if preds is not None and "x" in preds:
        p = preds[(preds["target"] == f.target["name"]) & (preds["predictors"] == f.predictors.name)]
        entry["points"] = {"model": p[D.MODEL].tolist(), "role": p["role"].tolist(),
                           "x": _floats(p["x"]), "y": _floats(p["y"])}
    return entry


def freeze_experiment(spec: dict, result: dict, scores_csv, target_csv, families_yaml) -> dict:
    """The record of an experiment's fitted laws that `FrozenLaw` restores: parameters, bootstrap
    draws and covariance (bands), capability space, reference line, training range, data hash."""
    laws = [_law_entry(spec, f, result) for f in result["fits"].values() if f.law is not None]
    return {"format": FROZEN_FORMAT, "experiment": spec["name"],
            "frozen": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "obsscale_version": __version__, "data_sha256": data_hash(scores_csv, target_csv, families_yaml),
            "spec": {k: v for k, v in spec.items() if k != "sweeps"}, "laws": laws,
            "provenance": provenance({"scores": scores_csv, "targets": target_csv, "families": families_yaml})}


def frozen_law(entry: dict) -> tuple[ObservationalScalingLaw, CapabilitySpace | None]:
    """Rebuild a frozen law (and its capability space) exactly as registered; nothing is refitted."""
    law = ObservationalScalingLaw.frozen(entry["link"], entry["estimator"], entry["params"], entry["status"])
    space = None
    if "capability_space" in entry:
        from obsscale.capability.impute import PCAImputer
        from obsscale.capability.pca import CapabilityPCA

        cs = entry["capability_space"]
        space = CapabilitySpace(cs["metrics"])
        space.imputer_ = PCAImputer.from_state(cs["imputer"])
        space.pca_ = CapabilityPCA.from_state(cs["pca"])
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
        unseen = ~frame[D.MODEL].isin(entry["training_models"]).to_numpy()
        if (unseen & ~np.isfinite(y)).any():
            log.info("%s / %s / %s: %d model(s) without a value of '%s' are not scored (the prediction "
                     "stage predicts them)", prereg["experiment"], t["name"], entry["predictors"],
                     int((unseen & ~np.isfinite(y)).sum()), t["column"])
        new = unseen & np.isfinite(y)
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
                                  "squared_error": (y[new] - yhat) ** 2,
                                  "data_sha256_frozen": prereg["data_sha256"]}))
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()


def law_forms(entry: dict, law: ObservationalScalingLaw, space: CapabilitySpace | None) -> dict:
    """One frozen law in Table C.1's three forms: log10 equivalent FLOPs, PCs, metric weights βᵀγ
    (with the metric-space intercept α − βᵀγ μ)."""
    row = {}
    r = entry.get("reference_line")
    row["form_equivalent_flops"] = format_form([r["slope"]], r["intercept"], law.h_, ["x"]) if r else ""
    row["reference_family"] = r["family"] if r else ""
    if space is None:
        row["form_pcs"] = ""
        row["form_metric_weights"] = ""
        return row
    K = law.n_features_in_
    row["form_pcs"] = format_form(law.coef_, law.intercept_, law.h_, [f"PC{i + 1}" for i in range(K)])
    w = law.coef_ @ np.asarray(space.pca_.components_)[:K]
    mu = np.asarray(space.pca_.mean_)
    row["metric_intercept"] = law.intercept_ - float(w @ mu)
    row["form_metric_weights"] = format_form(w, row["metric_intercept"], law.h_, space.metrics,
                                             intercept_first=True)
    for m, v in zip(space.metrics, w):
        row[f"weight_{m}"] = v
    return row


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
                   "label": entry["target"].get("label", ""), "predictors": main}
            forms = law_forms(entry, law, space)
            if space is None:  # Table C.1 leaves the PC and metric forms out for compute laws
                forms = {k: v for k, v in forms.items() if k in ("form_equivalent_flops", "reference_family")}
            row.update(forms)
            rows.append(row)
    return pd.DataFrame(rows)
