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

import logging
from typing import Any

import numpy as np
import pandas as pd

from obsscale.capability import scores as D
from obsscale.laws.fit import TargetFit, curve, fit_target, x_axis
from obsscale.laws.frame import experiment_frame, normalise_target
from obsscale.laws.law import format_form
from obsscale.laws.metrics import area_under_error, mae, mse
from obsscale.laws.reference import ReferenceLine
from obsscale.laws.spec import ROLES, parse_predictors
from obsscale.laws.splits import describe_split

log = logging.getLogger(__name__)

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
        row["form_pcs"] = format_form(law.coef_, law.intercept_, law.h_, [f"PC{i + 1}" for i in range(ps.k)])
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
    out["x"] = x_axis(fit)[ok]
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
        missing = frame.loc[~np.isfinite(normalise_target(frame[target["column"]], target["range"])), D.MODEL]
        if len(missing):
            log.info("%s / %s: %d model(s) without a value of '%s' are left out of the fit (e.g. %s); "
                     "the prediction stage predicts them", spec["name"], target["name"], len(missing),
                     target["column"], missing.tolist()[:3])
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


FAMILY_LINE_COLUMNS = ["experiment", "target", "predictors", "family", "n", "slope", "intercept", "r2",
                       "x_min", "x_max", "y_at_min", "y_at_max"]


def family_index_lines(predictions: pd.DataFrame, min_models: int = 3) -> pd.DataFrame:
    """Per family, the OLS line of the capability index P = α + βᵀS on log10 FLOPs for every law
    fitted on principal components (paper Fig C.3: how well each family's compute explains the
    target-specific index).  Families with fewer than `min_models` models with known FLOPs, or all
    at one FLOPs value, are left out.  The line's ends are written so that drawing it is reading."""
    rows = []
    need = {"index", "log10_flops", D.FAMILY, D.MODEL}
    if predictions.empty or not need <= set(predictions.columns):
        return pd.DataFrame(columns=FAMILY_LINE_COLUMNS)
    pts = predictions.dropna(subset=["index", "log10_flops"])
    pts = pts[pts["predictors"].map(lambda p: parse_predictors(p).kind == "pcs")]
    for (exp, target, preds), g in pts.groupby(["experiment", "target", "predictors"], sort=False):
        for fam, f in g.groupby(D.FAMILY, sort=False):
            if len(f) < min_models or np.ptp(f["log10_flops"]) == 0:
                continue
            line = ReferenceLine.fit(fam, f["index"], f["log10_flops"], f[D.MODEL])
            lo, hi = float(f["log10_flops"].min()), float(f["log10_flops"].max())
            rows.append({"experiment": exp, "target": target, "predictors": preds, "family": fam, "n": len(f),
                         "slope": line.slope, "intercept": line.intercept, "r2": line.r2, "x_min": lo, "x_max": hi,
                         "y_at_min": line.slope * lo + line.intercept, "y_at_max": line.slope * hi + line.intercept})
    return pd.DataFrame(rows, columns=FAMILY_LINE_COLUMNS)


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
