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
from obsscale.laws.law import (
    ObservationalScalingLaw,
    format_form,
    get_link,
)
from obsscale.laws.spec import parse_predictors

log = logging.getLogger(__name__)

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
                                  "squared_error": (y[new] - yhat) ** 2,
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
                   "label": entry["target"].get("label", ""), "predictors": main}
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
