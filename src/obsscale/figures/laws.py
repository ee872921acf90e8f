"""Figures of the observational scaling laws (paper Figs 4–6, 9 and appendix C), as config.

A figure of `law_figures:` (config/figures.yaml) names one builder of `BUILDERS` and its panels;
`render_law_figures` hands each builder the stage's tables (`FitTables`: results/fits/{experiment}.csv
and the predictions / curves / reference lines / sweeps / family lines beside it) and the figure's
resolved spec (obsscale.figures.spec.FigureSpec).  Builders only read and draw: the fit stage writes
every number they show, so re-plotting never refits.  Each figure is written as PNG (+ PDF on request) beside a
CSV of exactly what it plots (obsscale.figures.style.save_figure).

Builders (the `builder:` of a figure):

- `fit_grid`: rows of fit panels (most appendix figures);
- `fits_and_weights`: one row of fit panels over the metric weights βᵀγ of the same laws (Fig 5);
- `overlay_and_weights`: the laws of one row in one axes, legend = their forms, over the weights (Fig 6);
- `reference_families`: one law drawn in each reference family's equivalent compute (Fig 9);
- `capability_index`: the capability index P of each law against log10 FLOPs with per-family lines (C.3);
- `sweeps`: test error against the test-set ratio with the area under it (C.10, C.11);
- `bands`: fit panels with per-model bootstrap and delta-method intervals (C.22).
"""

from __future__ import annotations

import logging
import os
from typing import Callable

import numpy as np
import pandas as pd

from obsscale.capability import scores as D
from obsscale.core.registry import Registry
from obsscale.figures.panels import FitTables, fit_panel, grid, weights_heatmap
from obsscale.figures.spec import FigureSpec, Panel
from obsscale.figures.style import PALETTE, family_style, save_figure, use_style

log = logging.getLogger(__name__)

Builder = Callable[[FitTables, FigureSpec], tuple]
BUILDERS: Registry[Builder] = Registry("law figure builder")


def _row(spec: FigureSpec) -> list[Panel]:
    return [p for p in spec.panels[0] if p is not None]


def _concat(parts: list[pd.DataFrame]) -> pd.DataFrame:
    parts = [p for p in parts if len(p)]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


@BUILDERS.register("fit_grid")
def fit_grid(tables: FitTables, spec: FigureSpec):
    return grid(tables, spec.panels)


@BUILDERS.register("fits_and_weights")
def fits_and_weights(tables: FitTables, spec: FigureSpec):
    import matplotlib.pyplot as plt

    panels = _row(spec)
    fig = plt.figure(figsize=(5 * len(panels), 6.5))
    gs = fig.add_gridspec(2, len(panels), height_ratios=[3, 1.2])
    data = [fit_panel(fig.add_subplot(gs[0, j]), tables, *p, legend=(j == 0)) for j, p in enumerate(panels)]
    w = weights_heatmap(fig.add_subplot(gs[1, :]), tables, panels)
    fig.tight_layout()
    return fig, _concat(data + [w.assign(layer="weights")])


@BUILDERS.register("overlay_and_weights")
def overlay_and_weights(tables: FitTables, spec: FigureSpec):
    import matplotlib.pyplot as plt

    panels = _row(spec)
    fig = plt.figure(figsize=(10, 6.5))
    gs = fig.add_gridspec(2, 1, height_ratios=[3, 1.3])
    ax = fig.add_subplot(gs[0])
    data = []
    for i, (exp, t, preds) in enumerate(panels):
        row = tables.fit_row(exp, t, preds)
        pts = tables.points(exp, t, preds)
        color = PALETTE[i % len(PALETTE)]
        for role, marker in (("train", "o"), ("test", "X"), ("preregistered", "*")):
            r = pts[pts["role"] == role]
            ax.scatter(r["x"], r["y"], color=color, marker=marker, s=35, alpha=0.8, edgecolors="white",
                       linewidths=0.3)
        c = tables.curve(exp, t, preds)
        ax.plot(c["x"], c["y_hat"], color=color, lw=2, label=f"{row['label']}: {row['form']}")
        ax.fill_between(c["x"], c["band_lo"], c["band_hi"], color=color, alpha=0.2, lw=0)
        data += [pts.assign(layer="points"), c.assign(layer="curve", target=t)]
    first = tables.fit_row(*panels[0])
    ax.set_xlabel(f"log10 {first.get('eq_family', '')}-equiv. FLOPs (1E21)")
    ax.set_ylabel(spec.ylabel or str(first.get("label", "")))
    ax.legend(fontsize=8, loc="upper left")
    ax.set_title(spec.title, fontsize=10)
    w = weights_heatmap(fig.add_subplot(gs[1]), tables, panels)
    fig.tight_layout()
    return fig, _concat(data + [w.assign(layer="weights")])


@BUILDERS.register("reference_families")
def reference_families(tables: FitTables, spec: FigureSpec):
    import matplotlib.pyplot as plt

    exp, target, preds = _row(spec)[0]
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    c = tables.curves.get(exp, pd.DataFrame())
    c = c[(c["target"] == target) & (c["predictors"] == preds)] if len(c) else c
    refs = tables.references.get(exp, pd.DataFrame())
    refs = refs[(refs["target"] == target) & (refs["predictors"] == preds)] if len(refs) else refs
    for i, (fam, g) in enumerate(c.groupby("reference_family", sort=False)):
        form = refs.loc[refs["family"] == fam, "form"] if len(refs) else pd.Series(dtype=str)
        color = PALETTE[i % len(PALETTE)]
        ax.plot(g["x"], g["y_hat"], color=color, lw=2, label=f"{fam}: {form.iloc[0] if len(form) else ''}")
        ax.fill_between(g["x"], g["band_lo"], g["band_hi"], color=color, alpha=0.15, lw=0)
    ax.set_xlabel("log10 f-equivalent FLOPs (1E21)")
    ax.set_ylabel(spec.ylabel or target)
    ax.legend(fontsize=8)
    ax.set_title(spec.title, fontsize=10)
    fig.tight_layout()
    return fig, c


@BUILDERS.register("capability_index")
def capability_index(tables: FitTables, spec: FigureSpec):
    """Aggregated capability index P_m against log10 FLOPs per family, with each family's OLS line
    and R² as the fit stage wrote them (family_lines.csv)."""
    import matplotlib.pyplot as plt

    panels = _row(spec)
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.6), squeeze=False)
    data = []
    for ax, (exp, t, preds) in zip(axes[0], panels):
        p = tables.points(exp, t, preds).dropna(subset=["log10_flops", "index"])
        lines = tables.family_lines.get(exp, pd.DataFrame())
        if len(lines):
            lines = lines[(lines["target"] == t) & (lines["predictors"] == preds)]
        style = family_style(list(p[D.FAMILY].unique()))
        for fam, g in p.groupby(D.FAMILY, sort=False):
            color, marker = style[fam]
            ax.scatter(g["log10_flops"], g["index"], color=color, marker=marker, s=25)
        for _, ln in lines.iterrows():
            ax.plot([ln["x_min"], ln["x_max"]], [ln["y_at_min"], ln["y_at_max"]], color=style[ln["family"]][0],
                    ls="--", lw=1)
        r2s = dict(zip(lines["family"], lines["r2"])) if len(lines) else {}
        r2_avg = float(np.nanmean(list(r2s.values()))) if r2s else np.nan
        ref = tables.fit_row(exp, t, preds).get("eq_family", "") or "Llama-2"
        ax.set_title(f"{t}\nR²avg = {r2_avg:.2f}, R²({ref}) = {r2s.get(ref, np.nan):.2f}", fontsize=9)
        ax.set_xlabel("log10 FLOPs (1E21)")
        ax.set_ylabel("P = α + βᵀS")
        data.append(p.assign(r2_family=p[D.FAMILY].map(r2s), r2_avg=r2_avg))
    fig.tight_layout()
    return fig, _concat(data)


@BUILDERS.register("sweeps")
def sweeps(tables: FitTables, spec: FigureSpec):
    """Test MSE against the test-set ratio per predictor set, with its area under the error (AUE)
    from the fit stage's sweeps table."""
    import matplotlib.pyplot as plt

    ncol = max(len(s.targets) for s in spec.sweeps)
    fig, axes = plt.subplots(len(spec.sweeps), ncol, figsize=(4.2 * ncol, 3.4 * len(spec.sweeps)), squeeze=False)
    data = []
    for i, s in enumerate(spec.sweeps):
        sw = tables.sweeps.get(s.experiment, pd.DataFrame())
        for j in range(ncol):
            ax = axes[i][j]
            if j >= len(s.targets) or sw.empty:
                ax.axis("off")
                continue
            t = s.targets[j]
            g = sw[(sw["sweep"] == s.sweep) & (sw["target"] == t) & sw["status"].isin(["ok", "degenerate"])]
            for k, (pred, h) in enumerate(g.groupby("predictors", sort=False)):
                ax.plot(h["test_ratio"], h["mse_test"], marker="o", ms=3, color=PALETTE[k % len(PALETTE)],
                        label=f"{pred} (AUE {h['aue'].iloc[0]:.3f})")
            ax.set_yscale("log")
            ax.invert_xaxis()
            ax.set_xlabel("test-set ratio")
            ax.set_ylabel("test MSE")
            ax.set_title(f"{t} · {s.sweep}", fontsize=10)
            ax.legend(fontsize=7)
            data.append(g)
    fig.tight_layout()
    return fig, _concat(data)


@BUILDERS.register("bands")
def bands(tables: FitTables, spec: FigureSpec):
    """95 % bands: the bootstrap band of the curve, per-model bootstrap and delta-method intervals."""
    import matplotlib.pyplot as plt

    panels = _row(spec)
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.6), squeeze=False)
    data = []
    for ax, (exp, t, pr) in zip(axes[0], panels):
        data.append(fit_panel(ax, tables, exp, t, pr))
        p = tables.points(exp, t, pr)
        if "band_lo" in p:
            ax.errorbar(p["x"], p["y_hat"], yerr=[p["y_hat"] - p["band_lo"], p["band_hi"] - p["y_hat"]],
                        fmt="none", ecolor="0.3", elinewidth=0.8, capsize=2, label="bootstrap 95 %")
            ax.errorbar(p["x"] + 0.02, p["y_hat"], yerr=[p["y_hat"] - p["delta_lo"], p["delta_hi"] - p["y_hat"]],
                        fmt="none", ecolor="tab:purple", elinewidth=0.8, capsize=2, label="delta method 95 %")
            ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig, _concat(data)


OVERVIEW_PREDICTORS = ("PC-1..3", "log10_flops")


def experiment_overview(tables: FitTables, exp: str):
    """The figure any configured experiment gets: per target, its first (main) predictor set and
    the FLOPs baseline (every other set is in the fit table; the paper's are in the paper figures)."""
    f = tables.fits[exp]
    targets = list(dict.fromkeys(f["target"]))
    preds = list(dict.fromkeys(f["predictors"]))
    preds = [p for i, p in enumerate(preds) if i == 0 or p in OVERVIEW_PREDICTORS]
    return grid(tables, [[(exp, t, p) if tables.has(exp, t, p) else None for p in preds] for t in targets])


def render_law_figures(fits_dir: str | os.PathLike, experiments: list[str], figures: dict[str, dict[str, str]],
                       overviews: dict[str, dict[str, str]], specs: dict[str, FigureSpec] | None = None) -> None:
    """Stage function of the `law_figures_<job>` rules: the paper figures `figures` (id → its png /
    pdf / csv paths, drawn as `specs[id]` says) and one overview per experiment of `overviews`, in
    one process (each Python start costs ~2 s)."""
    use_style()
    import matplotlib.pyplot as plt

    # Multi-panel grids: 110 dpi keeps text legible and halves the rasterisation time.
    plt.rcParams["savefig.dpi"] = 110
    tables = FitTables(fits_dir, experiments)
    specs = specs or {}
    for name, paths in figures.items():
        if name not in specs:
            raise ValueError(f"figure '{name}' has no spec in `law_figures:`")
        fig, data = BUILDERS.get(specs[name].builder)(tables, specs[name])
        save_figure(fig, data, paths["png"], paths.get("pdf"), paths["csv"])
        log.info("figure %s: %d plotted rows", name, len(data))
    for exp, paths in overviews.items():
        fig, data = experiment_overview(tables, exp)
        save_figure(fig, data, paths["png"], paths.get("pdf"), paths["csv"])
        log.info("overview of %s: %d plotted rows", exp, len(data))
