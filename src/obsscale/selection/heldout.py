"""Held-out evaluation of model-subset selection (paper Sec 5, Fig 7, C.17, C.18; spec §7.5).

The post-training setup of the paper: base models merged with the post-training table, training
models = FLOPs ≤ 84 (Llama-2-7B), test models = the rest (FLOPs above the cutoff or unknown).  The
candidates for selection are the training models of the evaluated families with every benchmark
present (45 models, 14 families, 15,913 family combinations); their V-optimality uses the default
8-metric PCA.  For a chosen subset, each GSM8K target is fitted on the subset alone (the other
training models are discarded, not tested) with the NONGSM 7-metric capability space (imputation
+ PCA fitted on the subset, 3 PCs) and a scaling law, and scored by its test MSE.  The fit is the
laws stage's own (`obsscale.laws.fit.fit_target` with `train_models=`): the same cutoff split, the
same `range` normalisation of the targets, the same law and equivalent-compute axis.  The curve is
the geometric mean of the test MSEs over the targets, per budget: for the V-optimal subset, for
the random subsets (arithmetic mean over samples, band exp(mean ± std of log MSE)) and for all
training models.
"""

from __future__ import annotations

import functools
import logging
from concurrent.futures import ProcessPoolExecutor
from typing import Any, Sequence

import numpy as np
import pandas as pd

from obsscale.capability import scores as D
from obsscale.laws.fit import TargetFit, curve, fit_target
from obsscale.laws.metrics import mse
from obsscale.laws.spec import law_spec, parse_predictors, resolve_target
from obsscale.laws.splits import split_models
from obsscale.selection.search import (
    Selection,
    best_by_budget,
    exact_family_search,
    random_by_budget,
)
from obsscale.selection.pool import capability_pool

log = logging.getLogger(__name__)

# The GSM8K targets of Fig 7 (the paper leaves out "CoT + 1 Sample").
GSM8K_TARGETS = {
    "gsm8k_5_exact_match,flexible-extract": "Naive + Greedy",
    "gsm8k_cot_8_exact_match,flexible-extract": "CoT + Greedy",
    "gsm8k_cot_self_consistency_8_exact_match,maj@5-flexible-extract": "CoT + SC + 5 Samples",
}

# With 4 selected models a 5-parameter law interpolates; the paper fits it all the same.
MIN_TRAIN_MODELS = 2


def evaluation_frame(scores_csv, downstream_csv, families_yaml, metrics: Sequence[str],
                     targets: Sequence[str]) -> tuple[pd.DataFrame, D.Families]:
    """The default base model set inner-joined with a downstream table on `Model`."""
    families = D.load_families(families_yaml)
    base = D.select_models(D.read_score_table(scores_csv, list(metrics), families), families)
    down = pd.read_csv(downstream_csv)
    missing = [t for t in targets if t not in down.columns]
    if missing:
        raise D.ScoreTableError(downstream_csv, f"target column(s) {missing} missing", line=1, column=missing[0])
    if D.MODEL not in down.columns:
        raise D.ScoreTableError(downstream_csv, "no 'Model' column", line=1, column=D.MODEL)
    keep = [D.MODEL, *[t for t in targets if t not in base.columns]]
    merged = base.merge(down[keep], on=D.MODEL, how="inner")
    for t in targets:
        merged[t] = pd.to_numeric(merged[t], errors="raise")
    return merged, families


def heldout_spec(fit_metrics: Sequence[str], law: dict[str, Any], cutoff_flops: float, n_components: int = 3,
                 imputation: dict | None = None, reference_family: str = "Llama-2") -> dict:
    """The law spec of the held-out fits: a FLOPs cutoff split, the fit metrics' capability space
    with `n_components` PCs, the configured law, no bootstrap.  The frame holds no preregistered
    models (the default base set), hence `preregistered: exclude`."""
    return law_spec(
        "selection", "selection.evaluation", metrics=list(fit_metrics), n_components=n_components,
        imputation=imputation, split={"by": "cutoff", "column": D.FLOPS, "threshold": float(cutoff_flops)},
        preregistered="exclude", reference_family=reference_family, reference_fit_set="all",
        n_boot=0, sweeps={}, **dict(law))


def heldout_targets(targets: Sequence[str | dict]) -> list[dict]:
    """Target entries as the experiments resolve them (default range [0, 1]); GSM8K labels."""
    out = []
    for i, entry in enumerate(targets):
        t = resolve_target(entry, f"selection.evaluation.targets[{i}]")
        if not isinstance(entry, dict) or "label" not in entry:
            t["label"] = GSM8K_TARGETS.get(t["column"], t["name"])
        out.append(t)
    return out


def training_mask(frame: pd.DataFrame, spec: dict) -> pd.Series:
    """Training rows of the spec's split (unknown FLOPs go to the test set, spec §6)."""
    return split_models(frame, spec["split"])


def subset_fits(frame: pd.DataFrame, spec: dict, targets: Sequence[dict], train_models: Sequence[str]
                ) -> list[TargetFit]:
    """Fit every target on `train_models` only (the other training models are discarded)."""
    training = set(frame.loc[training_mask(frame, spec), D.MODEL])
    unknown = set(train_models) - training
    if unknown:
        raise ValueError(f"selected models are not training models of the cutoff: {sorted(unknown)}")
    pset = parse_predictors(f"PC-1..{spec['n_components']}")
    return [fit_target(frame, spec, t, pset, n_boot=0, train_models=list(train_models),
                       min_train_models=MIN_TRAIN_MODELS) for t in targets]


def _scored(fit: TargetFit) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Train rows, test rows and the law's predictions (NaN where not fitted)."""
    ok = np.isfinite(fit.X).all(axis=1)
    yhat = np.full(len(fit.y), np.nan)
    if fit.law is not None:
        yhat[ok] = fit.law.predict(fit.X[ok])
    return (fit.role == "train") & ok, (fit.role == "test") & ok, yhat


def subset_scores(fits: Sequence[TargetFit]) -> pd.DataFrame:
    """One row per target: n_train, n_test, mse_train, mse_test and the law's status."""
    rows = []
    for fit in fits:
        train, test, yhat = _scored(fit)
        rows.append({"target": fit.target["column"], "n_train": int(train.sum()), "n_test": int(test.sum()),
                     "mse_train": mse(fit.y[train], yhat[train]), "mse_test": mse(fit.y[test], yhat[test]),
                     "status": fit.law.status_ if fit.law is not None else "not_fitted"})
    return pd.DataFrame(rows)


def subset_predictions(fits: Sequence[TargetFit]) -> pd.DataFrame:
    """Per target, the selected (train) and test models with their PC scores, observed and
    predicted values, capability index P, the law's h and the reference family's line
    P = w·log10 C + b with each model's reference-equivalent log10 FLOPs (paper Eq. 7–8)."""
    parts = []
    for fit in fits:
        train, test, yhat = _scored(fit)
        for split, rows in (("train", train), ("test", test)):
            sub = fit.frame.loc[rows]
            out = sub[[D.MODEL, D.FAMILY, D.FLOPS]].copy()
            out.insert(0, "target", fit.target["column"])
            out.insert(1, "label", fit.target["label"])
            out["split"] = split
            out["observed"] = fit.y[rows]
            out["predicted"] = yhat[rows]
            for j in range(fit.X.shape[1]):
                out[f"PC-{j + 1}"] = fit.X[rows, j]
            _add_axis(out, fit, rows)
            parts.append(out)
    return pd.concat(parts, ignore_index=True)


def _add_axis(out: pd.DataFrame, fit: TargetFit, rows: np.ndarray) -> None:
    law, ref = fit.law, fit.reference
    out["index"] = law.decision_function(fit.X[rows]) if law is not None else np.nan
    out["h"] = law.h_ if law is not None else np.nan
    out["ref_slope"] = ref.slope if ref is not None else np.nan
    out["ref_intercept"] = ref.intercept if ref is not None else np.nan
    out["equivalent_log10_flops"] = ref.equivalent_log10_flops(out["index"]) if ref is not None else np.nan


def subset_curves(fits: Sequence[TargetFit]) -> pd.DataFrame:
    """Per target, the fitted law on a grid of reference-equivalent log10 FLOPs (the laws stage's
    `curve`); targets without an equivalent-compute axis have none."""
    parts = []
    for fit in fits:
        if fit.law is None or fit.reference is None:
            log.warning("%s: no equivalent-compute axis, no curve drawn", fit.target["name"])
            continue
        c = curve(fit)[["x", "y_hat", "reference_family"]]
        c.insert(0, "target", fit.target["column"])
        parts.append(c)
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
        columns=["target", "x", "y_hat", "reference_family"])


def subset_test_mse(frame: pd.DataFrame, train_models: Sequence[str], spec: dict,
                    targets: Sequence[dict]) -> pd.DataFrame:
    """The per-target scores of one subset (picklable for the process pool)."""
    return subset_scores(subset_fits(frame, spec, targets, train_models))


def geometric_mean(values) -> float:
    values = np.asarray(values, dtype=float)
    return float(np.exp(np.mean(np.log(values))))


def selection_curve(frame: pd.DataFrame, families: D.Families, budgets: Sequence[int],
                    selection_metrics: Sequence[str], spec: dict, targets: Sequence[dict],
                    selection_components: int = 3, pca_components: int = 5, imputation: dict | None = None,
                    max_families: int = 10, n_random: int = 5, random_window: int = 2, random_seed: int = 0,
                    n_jobs: int = 1) -> tuple[pd.DataFrame, pd.DataFrame, list[Selection]]:
    """Test MSE of V-optimal, random and all-model training sets per budget.

    Returns (curve, per-subset-and-target details, the selections)."""
    train_all = training_mask(frame, spec)
    candidates = frame[train_all].dropna(subset=list(selection_metrics)).reset_index(drop=True)
    pool = capability_pool(candidates, families, selection_metrics, selection_components,
                           pca_components, imputation)
    search = exact_family_search(pool, max_families=max_families, max_models=max(budgets))
    log.info("evaluation pool: %d models, %d families, %d combinations", len(candidates),
             len(pool.families), search.n_enumerated)
    selections = best_by_budget(search, budgets)
    selections += random_by_budget(search, budgets, n_samples=n_random, window=random_window, seed=random_seed)
    all_models = frame.loc[train_all, D.MODEL].tolist()
    everything = Selection(budget=len(all_models), method="all", families=tuple(dict.fromkeys(
        frame.loc[train_all, D.FAMILY])), models=tuple(all_models), n_models=len(all_models), objective=np.nan)
    details = _subset_details(frame, spec, targets, [*selections, everything], n_jobs)
    return _curve(details, budgets), details, selections


def _subset_details(frame, spec, targets, subsets: Sequence[Selection], n_jobs: int) -> pd.DataFrame:
    fit = functools.partial(subset_test_mse, frame, spec=spec, targets=targets)
    models = [list(s.models) for s in subsets]
    if n_jobs > 1:
        # the subsets are independent fits
        with ProcessPoolExecutor(max_workers=n_jobs) as workers:
            results = list(workers.map(fit, models))
    else:
        results = [fit(m) for m in models]
    details = []
    for sel, res in zip(subsets, results):
        for pos, (name, value) in enumerate((("budget", sel.budget), ("method", sel.method), ("rank", sel.rank),
                                             ("families", ";".join(sel.families)), ("n_models", sel.n_models),
                                             ("objective", sel.objective))):
            res.insert(pos, name, value)
        details.append(res)
    return pd.concat(details, ignore_index=True)


def _curve(details: pd.DataFrame, budgets: Sequence[int]) -> pd.DataFrame:
    per_subset = (details.groupby(["method", "budget", "rank"], sort=False)["mse_test"]
                  .agg(geometric_mean).rename("mse").reset_index())
    curve_rows = []
    for budget in budgets:
        v = per_subset[(per_subset.method == "v-optimal") & (per_subset.budget == budget)]["mse"]
        curve_rows.append({"budget": budget, "method": "v-optimal", "mse": float(v.iloc[0]),
                           "band_lo": np.nan, "band_hi": np.nan, "n_subsets": 1})
        r = per_subset[(per_subset.method == "random") & (per_subset.budget == budget)]["mse"].to_numpy()
        logs = np.log(r)
        curve_rows.append({"budget": budget, "method": "random", "mse": float(r.mean()),
                           "band_lo": float(np.exp(logs.mean() - logs.std())),
                           "band_hi": float(np.exp(logs.mean() + logs.std())), "n_subsets": len(r)})
    mse_all = float(per_subset[per_subset.method == "all"]["mse"].iloc[0])
    for budget in budgets:
        curve_rows.append({"budget": budget, "method": "all", "mse": mse_all, "band_lo": np.nan,
                           "band_hi": np.nan, "n_subsets": 1})
    return pd.DataFrame(curve_rows)
