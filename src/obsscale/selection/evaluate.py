"""Held-out evaluation of model-subset selection (paper Sec 5, Fig 7, C.17, C.18; spec §7.5).

The post-training setup of the paper: base models merged with the post-training table, training
models = FLOPs ≤ 84 (Llama-2-7B), test models = the rest (FLOPs above the cutoff or unknown).  The
candidates for selection are the training models of the evaluated families with every benchmark
present (45 models, 14 families, 15,913 family combinations); their V-optimality uses the default
8-metric PCA.  For a chosen subset, each GSM8K target is fitted on the subset alone (the other
training models are discarded, not tested) with the NONGSM 7-metric capability space (imputation
+ PCA fitted on the subset, 3 PCs) and a scaling law, and scored by its test MSE.  The curve is the
geometric mean of the test MSEs over the targets, per budget: for the V-optimal subset, for the
random subsets (arithmetic mean over samples, band exp(mean ± std of log MSE)) and for all
training models.
"""

from __future__ import annotations

import functools
import logging
from concurrent.futures import ProcessPoolExecutor
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

from obsscale.capability import scores as D
from obsscale.capability.space import CapabilitySpace
from obsscale.selection.search import (
    Selection,
    best_by_budget,
    capability_pool,
    exact_family_search,
    random_by_budget,
)

log = logging.getLogger(__name__)

# The GSM8K targets of Fig 7 (the paper leaves out "CoT + 1 Sample").
GSM8K_TARGETS = {
    "gsm8k_5_exact_match,flexible-extract": "Naive + Greedy",
    "gsm8k_cot_8_exact_match,flexible-extract": "CoT + Greedy",
    "gsm8k_cot_self_consistency_8_exact_match,maj@5-flexible-extract": "CoT + SC + 5 Samples",
}


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


def training_mask(frame: pd.DataFrame, cutoff_flops: float) -> pd.Series:
    """Training rows of the compute cutoff; unknown FLOPs go to the test set (spec §6)."""
    return frame[D.FLOPS].le(cutoff_flops) & frame[D.FLOPS].notna()


def subset_test_mse(frame: pd.DataFrame, train_models: Sequence[str], targets: Sequence[str],
                    fit_metrics: Sequence[str], law_factory: Callable[[], Any], cutoff_flops: float,
                    n_components: int = 3, imputation: dict | None = None,
                    return_predictions: bool = False, reference_family: str = "Llama-2"):
    """Fit every target on `train_models` only and score it on the cutoff's test models.

    Returns one row per target (n_train, n_test, mse_train, mse_test) and, when asked, the
    per-model predictions (train and test rows) for plotting.
    """
    train_all = training_mask(frame, cutoff_flops)
    chosen = frame[D.MODEL].isin(set(train_models))
    unknown = set(train_models) - set(frame.loc[train_all, D.MODEL])
    if unknown:
        raise ValueError(f"selected models are not training models of the cutoff: {sorted(unknown)}")
    names = [f"PC-{i}" for i in range(1, n_components + 1)]
    rows, preds = [], []
    for target in targets:
        has_y = frame[target].notna()
        train = frame[chosen & train_all & has_y]
        test = frame[~train_all & has_y]
        space = CapabilitySpace(list(fit_metrics), n_components=n_components, imputation=imputation).fit(train)
        x_train = space.transform(train)[names].to_numpy()
        x_test = space.transform(test)[names].to_numpy()
        law = law_factory().fit(x_train, train[target].to_numpy(dtype=float))
        p_train = np.asarray(law.predict(x_train), dtype=float)
        p_test = np.asarray(law.predict(x_test), dtype=float)
        rows.append({
            "target": target, "n_train": len(train), "n_test": len(test),
            "mse_train": float(np.mean((p_train - train[target].to_numpy()) ** 2)),
            "mse_test": float(np.mean((p_test - test[target].to_numpy()) ** 2)),
            "status": getattr(law, "status_", "ok"),
        })
        if return_predictions:
            part = pd.concat([train.assign(split="train"), test.assign(split="test")], ignore_index=True)
            out = part[[D.MODEL, D.FAMILY, D.FLOPS, "split"]].copy()
            out.insert(0, "target", target)
            out["observed"] = part[target].to_numpy()
            out["predicted"] = np.concatenate([p_train, p_test])
            xs = np.vstack([x_train, x_test])
            for j, n in enumerate(names):
                out[n] = xs[:, j]
            out = _equivalent_compute(out, law, xs, reference_family)
            preds.append(out)
    table = pd.DataFrame(rows)
    if return_predictions:
        return table, pd.concat(preds, ignore_index=True)
    return table


def _equivalent_compute(out: pd.DataFrame, law, xs: np.ndarray, reference_family: str) -> pd.DataFrame:
    """Add the capability index P = α + βᵀS, the reference family's line P = w·log10 C + b fitted
    on its models in the analysis frame (selected and test rows, spec §5.4), and each model's
    reference-equivalent log10 FLOPs (P − b)/w, for drawing the law as h·σ(w x + b) + (1 − h)."""
    out["index"] = law.decision_function(xs)
    out["h"] = law.h_
    ref = out[D.FAMILY] == reference_family
    try:
        from obsscale.laws.law import ReferenceLine

        line = ReferenceLine.fit(reference_family, out.loc[ref, "index"].to_numpy(),
                                 D.log10_flops(out.loc[ref, D.FLOPS]).to_numpy(), out.loc[ref, D.MODEL].tolist())
    except (ImportError, ValueError) as exc:
        log.warning("no equivalent-compute axis: %s", exc)
        out["ref_slope"] = out["ref_intercept"] = out["equivalent_log10_flops"] = np.nan
        return out
    out["ref_slope"] = line.slope
    out["ref_intercept"] = line.intercept
    out["equivalent_log10_flops"] = line.equivalent_log10_flops(out["index"].to_numpy())
    return out


def geometric_mean(values) -> float:
    values = np.asarray(values, dtype=float)
    return float(np.exp(np.mean(np.log(values))))


def selection_curve(frame: pd.DataFrame, families: D.Families, budgets: Sequence[int],
                    selection_metrics: Sequence[str], fit_metrics: Sequence[str],
                    targets: Sequence[str], law_factory: Callable[[], Any], cutoff_flops: float = 84.0,
                    selection_components: int = 3, fit_components: int = 3, pca_components: int = 5,
                    imputation: dict | None = None, max_families: int = 10, n_random: int = 5,
                    random_window: int = 2, random_seed: int = 0, n_jobs: int = 1
                    ) -> tuple[pd.DataFrame, pd.DataFrame, list[Selection]]:
    """Test MSE of V-optimal, random and all-model training sets per budget.

    Returns (curve, per-subset-and-target details, the selections)."""
    train_all = training_mask(frame, cutoff_flops)
    candidates = frame[train_all].dropna(subset=list(selection_metrics)).reset_index(drop=True)
    pool = capability_pool(candidates, families, selection_metrics, selection_components,
                           pca_components, imputation)
    search = exact_family_search(pool, max_families=max_families, max_models=max(budgets))
    log.info("evaluation pool: %d models, %d families, %d combinations", len(candidates),
             len(pool.families), search.n_enumerated)
    selections = best_by_budget(search, budgets)
    selections += random_by_budget(search, budgets, n_samples=n_random, window=random_window, seed=random_seed)

    all_models = frame.loc[train_all, D.MODEL].tolist()
    subsets = [(sel.budget, sel.method, sel.rank, ";".join(sel.families), sel.n_models, sel.objective,
                list(sel.models)) for sel in selections]
    subsets.append((len(all_models), "all", 0, ";".join(dict.fromkeys(frame.loc[train_all, D.FAMILY])),
                    len(all_models), np.nan, all_models))
    fit = functools.partial(subset_test_mse, frame, targets=targets, fit_metrics=fit_metrics,
                            law_factory=law_factory, cutoff_flops=cutoff_flops,
                            n_components=fit_components, imputation=imputation)
    models = [s[-1] for s in subsets]
    if n_jobs > 1:
        # the subsets are independent fits; the law factory must be picklable (a class or a partial)
        with ProcessPoolExecutor(max_workers=n_jobs) as pool:
            results = list(pool.map(fit, models))
    else:
        results = [fit(m) for m in models]
    details = []
    for (budget, method, rank, fams, n_models, objective, _), res in zip(subsets, results):
        for pos, (name, value) in enumerate((("budget", budget), ("method", method), ("rank", rank),
                                             ("families", fams), ("n_models", n_models),
                                             ("objective", objective))):
            res.insert(pos, name, value)
        details.append(res)
    details = pd.concat(details, ignore_index=True)

    per_subset = (details.groupby(["method", "budget", "rank"], sort=False)["mse_test"]
                  .agg(geometric_mean).rename("mse").reset_index())
    curve = []
    for budget in budgets:
        v = per_subset[(per_subset.method == "v-optimal") & (per_subset.budget == budget)]["mse"]
        curve.append({"budget": budget, "method": "v-optimal", "mse": float(v.iloc[0]),
                      "band_lo": np.nan, "band_hi": np.nan, "n_subsets": 1})
        r = per_subset[(per_subset.method == "random") & (per_subset.budget == budget)]["mse"].to_numpy()
        logs = np.log(r)
        curve.append({"budget": budget, "method": "random", "mse": float(r.mean()),
                      "band_lo": float(np.exp(logs.mean() - logs.std())),
                      "band_hi": float(np.exp(logs.mean() + logs.std())), "n_subsets": len(r)})
    mse_all = float(per_subset[per_subset.method == "all"]["mse"].iloc[0])
    for budget in budgets:
        curve.append({"budget": budget, "method": "all", "mse": mse_all, "band_lo": np.nan,
                      "band_hi": np.nan, "n_subsets": 1})
    return pd.DataFrame(curve), details, selections


# --------------------------------------------------------------------------------------------------
# Figures


def plot_selection_curve(curve: pd.DataFrame, png, pdf, csv) -> None:
    """Fig 7a: geometric-mean test MSE vs model budget; V-optimal, random (band) and all models."""
    import matplotlib.pyplot as plt

    from obsscale.figures.style import PALETTE, save_figure, use_style

    use_style()
    fig, ax = plt.subplots(figsize=(6.0, 4.2))
    v = curve[curve.method == "v-optimal"]
    r = curve[curve.method == "random"]
    a = curve[curve.method == "all"]
    ax.plot(v.budget, v.mse, "o-", color=PALETTE[0], label="V-optimal selection")
    ax.plot(r.budget, r.mse, "s-", color=PALETTE[1], label="Random selection")
    ax.fill_between(r.budget, r.band_lo, r.band_hi, color=PALETTE[1], alpha=0.2)
    if len(a):
        ax.axhline(a.mse.iloc[0], color="0.3", ls="--", label="All training models")
    ax.set_yscale("log")
    ax.set_xlabel("Number of selected models")
    ax.set_ylabel("Test MSE (geometric mean over GSM8K targets)")
    ax.set_xticks(sorted(v.budget.unique()))
    ax.legend(frameon=False)
    save_figure(fig, curve, png, pdf, csv)


def plot_subset_fits(predictions: pd.DataFrame, png, pdf, csv, title: str) -> None:
    """Fig 7b / C.17 / C.18: per GSM8K target (rows) and budget (columns), the law fitted on the
    selected models against Llama-2-equivalent log10 FLOPs (paper Eq. 7–8), with the selected
    training models and the held-out test models, and the test MSE.  Where the reference family
    gives no axis, the panel plots against the capability index P instead."""
    import matplotlib.pyplot as plt
    from scipy.special import expit

    from obsscale.figures.style import TEST_COLOR, TRAIN_COLOR, save_figure, use_style

    use_style()
    targets = list(dict.fromkeys(predictions["target"]))
    budgets = sorted(predictions["budget"].unique())
    fig, axes = plt.subplots(len(targets), len(budgets), figsize=(3.3 * len(budgets), 3.0 * len(targets)),
                             squeeze=False, sharey="row")
    plotted = []
    for i, target in enumerate(targets):
        for j, budget in enumerate(budgets):
            ax = axes[i, j]
            sub = predictions[(predictions.target == target) & (predictions.budget == budget)].copy()
            equivalent = sub["equivalent_log10_flops"].notna().all()
            sub["x"] = sub["equivalent_log10_flops"] if equivalent else sub["index"]
            for split, color, marker in (("train", TRAIN_COLOR, "o"), ("test", TEST_COLOR, "X")):
                part = sub[sub.split == split]
                label = "Selected (train)" if split == "train" else "Test"
                ax.scatter(part.x, part.observed, color=color, marker=marker, s=30, label=label, zorder=3)
            span = sub.x.max() - sub.x.min()
            grid = np.linspace(sub.x.min() - 0.05 * span, sub.x.max() + 0.05 * span, 100)
            h = float(sub["h"].iloc[0])
            z = sub["ref_slope"].iloc[0] * grid + sub["ref_intercept"].iloc[0] if equivalent else grid
            ax.plot(grid, h * expit(z) + (1 - h), color="0.25", lw=1.5)
            test = sub[sub.split == "test"]
            mse = float(np.mean((test.predicted - test.observed) ** 2))
            n_train = int((sub.split == "train").sum())
            ax.text(0.04, 0.96, f"{n_train} models\nMSE_test = {mse:.1e}", transform=ax.transAxes,
                    va="top", fontsize=9)
            if i == 0:
                ax.set_title(f"budget {budget}")
            if j == 0:
                ax.set_ylabel(f"{GSM8K_TARGETS.get(target, target)}\naccuracy")
            if i == len(targets) - 1:
                ax.set_xlabel("Log10 Llama-2-equiv.\nFLOPs (1E21)" if equivalent else "capability index P")
            plotted.append(sub)
    axes[0, 0].legend(frameon=False, fontsize=8, loc="lower right")
    fig.suptitle(title)
    fig.tight_layout()
    save_figure(fig, pd.concat(plotted, ignore_index=True), png, pdf, csv)


# --------------------------------------------------------------------------------------------------
# Stage functions


def make_law_factory(spec: dict[str, Any]) -> Callable[[], Any]:
    """A zero-argument constructor of the configured scaling law (fresh, unfitted, per fit)."""
    from obsscale.laws.law import ObservationalScalingLaw

    return functools.partial(ObservationalScalingLaw, **dict(spec))
