"""The pieces every scaling-law figure is made of: the stage's tables (`FitTables`), one law's
panel (`fit_panel`), a grid of them (`grid`) and the metric-weights heatmap.  They read the tables
of results/fits/ and draw; nothing here fits.

A fit panel shows train (blue o), test (red X) and preregistered (green *) models, the fitted law,
its 95 % bootstrap band (shaded) and an annotation: the form in the plotted x and the errors.  A
diverged or degenerate fit is drawn dashed with its status written in the panel, never silently.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from obsscale.figures.style import HIGHLIGHT_COLOR, TEST_COLOR, TRAIN_COLOR

ROLE_STYLE = {"train": (TRAIN_COLOR, "o", "Train"), "test": (TEST_COLOR, "X", "Test"),
              "preregistered": (HIGHLIGHT_COLOR, "*", "Pre-registered")}


class FitTables:
    """All experiments' tables, keyed by experiment name."""

    def __init__(self, fits_dir: str | os.PathLike, experiments: list[str]):
        self.fits, self.predictions, self.curves, self.references, self.sweeps = {}, {}, {}, {}, {}
        self.family_lines: dict[str, pd.DataFrame] = {}
        d = Path(fits_dir)
        for e in experiments:
            self.fits[e] = pd.read_csv(d / f"{e}.csv")
            self.predictions[e] = pd.read_csv(d / e / "predictions.csv")
            for attr, fname in (("curves", "curves"), ("references", "reference_lines"), ("sweeps", "sweeps"),
                                ("family_lines", "family_lines")):
                try:
                    getattr(self, attr)[e] = pd.read_csv(d / e / f"{fname}.csv")
                except (pd.errors.EmptyDataError, FileNotFoundError):
                    getattr(self, attr)[e] = pd.DataFrame()

    def has(self, exp: str, target: str | None = None, predictors: str | None = None) -> bool:
        if exp not in self.fits:
            return False
        f = self.fits[exp]
        sel = np.ones(len(f), bool)
        if target is not None:
            sel &= f["target"] == target
        if predictors is not None:
            sel &= f["predictors"] == predictors
        return bool(sel.any())

    def fit_row(self, exp, target, predictors) -> pd.Series:
        f = self.fits[exp]
        return f[(f["target"] == target) & (f["predictors"] == predictors)].iloc[0]

    def points(self, exp, target, predictors) -> pd.DataFrame:
        p = self.predictions[exp]
        return p[(p["target"] == target) & (p["predictors"] == predictors)]

    def curve(self, exp, target, predictors, family: str | None = None) -> pd.DataFrame:
        c = self.curves[exp]
        if c.empty:
            return c
        sel = (c["target"] == target) & (c["predictors"] == predictors)
        if family is not None:
            sel &= c["reference_family"].fillna("") == family
        else:
            row = self.fit_row(exp, target, predictors)
            fam = row.get("eq_family")
            if isinstance(fam, str) and fam:
                sel &= c["reference_family"].fillna("") == fam
        return c[sel]


def _x_label(row: pd.Series) -> str:
    p = row["predictors"]
    if p == "log10_flops":
        return "log10 FLOPs (1E21)"
    if p == "log10_size":
        return "log10 model size (B)"
    return f"log10 {row.get('eq_family', '')}-equiv. FLOPs (1E21)"


def _fmt(v) -> str:
    return "nan" if not np.isfinite(v) else f"{v:.1e}"


def fit_panel(ax, tables: FitTables, exp: str, target: str, predictors: str, title: str | None = None,
              legend: bool = False) -> pd.DataFrame:
    """One law: points by role, curve with band, annotation.  Returns the plotted rows."""
    if not tables.has(exp, target, predictors):
        raise ValueError(f"the fit tables have no law {exp}/{target}/{predictors}: the figure's panels and "
                         "the fitted experiments disagree (rerun the fit stage)")
    row = tables.fit_row(exp, target, predictors)
    pts = tables.points(exp, target, predictors)
    out = []
    status = row.get("status", "ok")
    if "x" in pts:
        for role, (color, marker, label) in ROLE_STYLE.items():
            r = pts[pts["role"] == role]
            if len(r):
                ax.scatter(r["x"], r["y"], c=[color], marker=marker, s=45 if marker != "*" else 90,
                           label=label, edgecolors="white", linewidths=0.4, zorder=3)
        out.append(pts.assign(layer="points"))
    c = tables.curve(exp, target, predictors)
    if len(c):
        bad = status not in ("ok",)
        ax.plot(c["x"], c["y_hat"], color="0.2", lw=1.8, ls="--" if bad else "-", zorder=2)
        if c["band_lo"].notna().any():
            ax.fill_between(c["x"], c["band_lo"], c["band_hi"], color="0.5", alpha=0.25, lw=0,
                            label="95 % band", zorder=1)
        out.append(c.assign(layer="curve", target=target, predictors=predictors))
    # Plain text, not mathtext: parsing TeX markup dominates the drawing time of a small panel.
    text = f"y = {row.get('form', '')}\nMSE train = {_fmt(row.get('mse_train', np.nan))}\n" \
           f"MSE test = {_fmt(row.get('mse_test', np.nan))}"
    if status != "ok":
        text += f"\nWARNING: {status}"
    ax.text(0.03, 0.97, text, transform=ax.transAxes, va="top", ha="left", fontsize=8,
            color="darkred" if status != "ok" else "black")
    ax.set_xlabel(_x_label(row), fontsize=9)
    ax.set_ylabel(str(row.get("label", target)), fontsize=9)
    ax.set_title(title or f"{row.get('label', target)} · {predictors}", fontsize=10)
    if legend:
        ax.legend(fontsize=7, loc="lower right")
    df = pd.concat(out, ignore_index=True) if out else pd.DataFrame()
    if len(df):
        df.insert(0, "panel", f"{exp}/{target}/{predictors}")
        df["experiment"] = exp
    return df


def grid(tables: FitTables, panels: list[list[tuple | None]], size=(3.6, 3.0)):
    """Rows of fit panels; a panel is (experiment, target, predictors), None leaves the cell empty."""
    import matplotlib.pyplot as plt

    nr, nc = len(panels), max(len(r) for r in panels)
    fig, axes = plt.subplots(nr, nc, figsize=(size[0] * nc, size[1] * nr), squeeze=False)
    data = []
    for i, row in enumerate(panels):
        for j in range(nc):
            ax = axes[i][j]
            if j >= len(row) or row[j] is None:
                ax.axis("off")
                continue
            data.append(fit_panel(ax, tables, *row[j], legend=(i == 0 and j == 0)))
            ax.locator_params(nbins=4)
            # Axis labels once per row / column: fewer texts to lay out is most of the drawing time.
            if j > 0 and row[0] is not None and row[0][:2] == row[j][:2]:
                ax.set_ylabel("")
            if i < nr - 1 and j < len(panels[i + 1]) and panels[i + 1][j] is not None \
                    and panels[i + 1][j][2] == row[j][2]:
                ax.set_xlabel("")
    # Fixed spacing instead of tight_layout: layout passes re-measure every text, which dominates
    # the drawing time of a many-panel grid.
    fig.subplots_adjust(left=0.07, right=0.98, bottom=0.12 / nr ** 0.5, top=1 - 0.08 / nr ** 0.5,
                        wspace=0.28, hspace=0.45)
    return fig, pd.concat(data, ignore_index=True) if data else pd.DataFrame()


def weights_heatmap(ax, tables: FitTables, rows: list[tuple]) -> pd.DataFrame:
    """βᵀγ per benchmark (paper Figs 5c, 6b)."""
    import seaborn as sns

    recs = []
    for exp, target, predictors in rows:
        if not tables.has(exp, target, predictors):
            continue
        r = tables.fit_row(exp, target, predictors)
        w = {c[len("weight_"):]: r[c] for c in r.index if c.startswith("weight_") and pd.notna(r[c])}
        recs.append(pd.Series(w, name=str(r.get("label", target))))
    table = pd.DataFrame(recs)
    if len(table):
        sns.heatmap(table, annot=True, fmt=".2f", cmap="coolwarm", center=0, ax=ax, cbar=False,
                    annot_kws={"fontsize": 8})
        ax.set_title("metric weights βᵀγ", fontsize=10)
    return table.reset_index(names="law")


