"""Figures of the model-subset selection (paper Fig 7a, 7b, C.17, C.18): they read the tables of
the `selection` rule's held-out evaluation and draw them; nothing is fitted here."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from obsscale.figures.style import PALETTE, TEST_COLOR, TRAIN_COLOR, save_figure, use_style


def plot_selection_curve(curve: pd.DataFrame, png, pdf, csv) -> None:
    """Fig 7a: geometric-mean test MSE vs model budget; V-optimal, random (band) and all models."""
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


def _subset_panel(ax, sub: pd.DataFrame, line: pd.DataFrame) -> pd.DataFrame:
    """One target × budget: the selected and test models and the law's curve, on the
    reference-equivalent axis (or the capability index P where there is none)."""
    sub = sub.copy()
    equivalent = bool(sub["equivalent_log10_flops"].notna().all())
    sub["x"] = sub["equivalent_log10_flops"] if equivalent else sub["index"]
    for split, color, marker in (("train", TRAIN_COLOR, "o"), ("test", TEST_COLOR, "X")):
        part = sub[sub.split == split]
        label = "Selected (train)" if split == "train" else "Test"
        ax.scatter(part.x, part.observed, color=color, marker=marker, s=30, label=label, zorder=3)
    if equivalent and len(line):
        ax.plot(line.x, line.y_hat, color="0.25", lw=1.5)
    test = sub[sub.split == "test"]
    mse = float(np.mean((test.predicted - test.observed) ** 2))
    n_train = int((sub.split == "train").sum())
    ax.text(0.04, 0.96, f"{n_train} models\nMSE_test = {mse:.1e}", transform=ax.transAxes, va="top", fontsize=9)
    return sub


def plot_subset_fits(predictions: pd.DataFrame, curves: pd.DataFrame, png, pdf, csv, title: str) -> None:
    """Fig 7b / C.17 / C.18: per GSM8K target (rows) and budget (columns), the law fitted on the
    selected models against Llama-2-equivalent log10 FLOPs (paper Eq. 7–8), with the selected
    training models and the held-out test models, and the test MSE.  Where the reference family
    gives no axis, the panel plots the models against the capability index P, without a curve."""
    use_style()
    targets = list(dict.fromkeys(predictions["target"]))
    labels = dict(zip(predictions["target"], predictions["label"])) if "label" in predictions else {}
    budgets = sorted(predictions["budget"].unique())
    fig, axes = plt.subplots(len(targets), len(budgets), figsize=(3.3 * len(budgets), 3.0 * len(targets)),
                             squeeze=False, sharey="row")
    plotted = []
    for i, target in enumerate(targets):
        for j, budget in enumerate(budgets):
            ax = axes[i, j]
            sub = predictions[(predictions.target == target) & (predictions.budget == budget)]
            line = curves[(curves.target == target) & (curves.budget == budget)]
            sub = _subset_panel(ax, sub, line)
            if i == 0:
                ax.set_title(f"budget {budget}")
            if j == 0:
                ax.set_ylabel(f"{labels.get(target, target)}\naccuracy")
            if i == len(targets) - 1:
                equivalent = sub["equivalent_log10_flops"].notna().all()
                ax.set_xlabel("Log10 Llama-2-equiv.\nFLOPs (1E21)" if equivalent else "capability index P")
            plotted.append(sub)
    axes[0, 0].legend(frameon=False, fontsize=8, loc="lower right")
    fig.suptitle(title)
    fig.tight_layout()
    save_figure(fig, pd.concat(plotted, ignore_index=True), png, pdf, csv)
