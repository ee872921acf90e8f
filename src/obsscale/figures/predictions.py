"""The prediction figure: each main frozen law's curve (with its band) on the reference family's
equivalent-FLOPs axis, the models it was fitted and tested on, and the predicted models placed on it
with their bands.  One panel per law; PNG (+ PDF on request) beside the CSV of every plotted point."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator

from obsscale.figures.style import HIGHLIGHT_COLOR, TEST_COLOR, TRAIN_COLOR, plt, save_figure, use_style

MAX_LABELLED = 6  # predicted models named in a panel; more are drawn unlabelled


def _draw(ax, panel: dict, data: pd.DataFrame) -> None:
    c = data[data["kind"] == "curve"]
    if len(c):
        ax.plot(c["x"], c["y"], color="black", lw=1.2, label="frozen law")
        if c["lo"].notna().any():
            ax.fill_between(c["x"], c["lo"], c["hi"], color="grey", alpha=0.25, lw=0, label="95 % band")
    for kind, color, label in (("train", TRAIN_COLOR, "train"), ("test", TEST_COLOR, "test"),
                               ("preregistered", TEST_COLOR, None)):
        p = data[data["kind"] == kind]
        if len(p):
            ax.scatter(p["x"], p["y"], s=12, color=color, alpha=0.6, label=label, lw=0)
    p = data[(data["kind"] == "predicted") & data["x"].notna() & data["y"].notna()]
    if len(p):
        err = np.vstack([(p["y"] - p["lo"]).clip(lower=0), (p["hi"] - p["y"]).clip(lower=0)])
        ax.errorbar(p["x"], p["y"], yerr=np.nan_to_num(err), fmt="*", ms=8, color=HIGHLIGHT_COLOR,
                    ecolor=HIGHLIGHT_COLOR, elinewidth=0.7, alpha=0.8, capsize=1.5, label="predicted")
        for _, r in p.head(MAX_LABELLED).iterrows():
            ax.annotate(str(r["model"]).split("/")[-1], (r["x"], r["y"]), fontsize=6, xytext=(3, 3),
                        textcoords="offset points")
    ax.set_xlabel(panel["xlabel"], fontsize=8)
    ax.set_ylabel("normalised target", fontsize=8)
    ax.set_title(panel["title"], fontsize=8)
    ax.tick_params(labelsize=7)
    ax.xaxis.set_major_locator(MaxNLocator(4))
    ax.yaxis.set_major_locator(MaxNLocator(4))


def render_prediction_figure(panels: Sequence[dict], png, pdf, csv) -> pd.DataFrame:
    """One panel per entry of `panels` (dicts with `title`, `xlabel` and `data`: the rows of one law's
    curve, its training points and the predicted models, as `obsscale.stages.predict` prepares them)."""
    use_style()
    plt.rcParams["savefig.dpi"] = 100
    n = max(len(panels), 1)
    cols = min(4, n)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 2.9 * rows), squeeze=False)
    data = []
    for ax, panel in zip(axes.flat, panels):
        _draw(ax, panel, panel["data"])
        data.append(panel["data"])
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    if panels:
        handles, labels = axes.flat[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="upper center", ncol=len(labels), fontsize=8, frameon=False,
                   bbox_to_anchor=(0.5, 1.0))
    # Fixed spacing instead of a tight layout: text layout is what a many-panel figure spends its time on.
    height = 2.9 * rows  # margins in inches, whatever the number of rows
    fig.subplots_adjust(left=0.07, right=0.96, bottom=0.55 / height, top=1 - 0.8 / height, wspace=0.3,
                        hspace=0.75)
    out = pd.concat(data, ignore_index=True) if data else pd.DataFrame(columns=["law", "kind", "model", "x", "y"])
    save_figure(fig, out, png, pdf, csv, tight=False)
    return out
