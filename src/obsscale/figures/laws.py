"""Figures of the observational scaling laws (paper Figs 4–6, 9 and appendix C).

Every figure is drawn from the stage's tables alone (results/fits/{experiment}.csv and the
predictions / curves / reference lines / sweeps beside it), so re-plotting never refits.  Each is
written as PNG + PDF beside a CSV of exactly what it plots (obsscale.figures.style.save_figure).

A fit panel shows train (blue o), test (red X) and preregistered (green *) models, the fitted law,
its 95 % bootstrap band (shaded) and an annotation: the form in the plotted x and the errors.  A
diverged or degenerate fit is drawn dashed with its status written in the panel, never silently.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from obsscale.capability import scores as D
from obsscale.core.registry import Registry
from obsscale.laws.law import area_under_error
from obsscale.figures.style import HIGHLIGHT_COLOR, PALETTE, TEST_COLOR, TRAIN_COLOR, family_style, save_figure, use_style

log = logging.getLogger(__name__)

ROLE_STYLE = {"train": (TRAIN_COLOR, "o", "Train"), "test": (TEST_COLOR, "X", "Test"),
              "preregistered": (HIGHLIGHT_COLOR, "*", "Pre-registered")}


class FitTables:
    """All experiments' tables, keyed by experiment name."""

    def __init__(self, fits_dir: str | os.PathLike, experiments: list[str]):
        self.fits, self.predictions, self.curves, self.references, self.sweeps = {}, {}, {}, {}, {}
        d = Path(fits_dir)
        for e in experiments:
            self.fits[e] = pd.read_csv(d / f"{e}.csv")
            self.predictions[e] = pd.read_csv(d / e / "predictions.csv")
            for attr, fname in (("curves", "curves"), ("references", "reference_lines"), ("sweeps", "sweeps")):
                try:
                    getattr(self, attr)[e] = pd.read_csv(d / e / f"{fname}.csv")
                except pd.errors.EmptyDataError:
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
        ax.text(0.5, 0.5, f"{exp}/{target}/{predictors}\nnot configured", ha="center", va="center",
                transform=ax.transAxes)
        return pd.DataFrame()
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


def grid(tables: FitTables, panels: list[list[tuple]], size=(3.6, 3.0)):
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


# ---------------------------------------------------------------------------------------------------
# Paper figures


def _fig_grid(panels, size=(3.6, 3.0)):
    def build(tables):
        return grid(tables, panels, size)
    return build


def fig5(tables):
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(10, 6.5))
    gs = fig.add_gridspec(2, 2, height_ratios=[3, 1.2])
    data = [fit_panel(fig.add_subplot(gs[0, 0]), tables, "agentic", "agentbench", "PC-1..3", legend=True),
            fit_panel(fig.add_subplot(gs[0, 1]), tables, "agentic", "agentboard", "PC-1..3")]
    w = weights_heatmap(fig.add_subplot(gs[1, :]), tables, [("agentic", "agentbench", "PC-1..3"),
                                                            ("agentic", "agentboard", "PC-1..3")])
    fig.tight_layout()
    return fig, pd.concat(data + [w.assign(layer="weights")], ignore_index=True)


GSM = ["gsm8k_naive", "gsm8k_cot", "gsm8k_cot_sc5"]


def fig6(tables):
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(10, 6.5))
    gs = fig.add_gridspec(2, 1, height_ratios=[3, 1.3])
    ax = fig.add_subplot(gs[0])
    data = []
    for i, t in enumerate(GSM):
        if not tables.has("post_training", t, "PC-1..3"):
            continue
        row = tables.fit_row("post_training", t, "PC-1..3")
        pts = tables.points("post_training", t, "PC-1..3")
        color = PALETTE[i]
        for role, marker in (("train", "o"), ("test", "X"), ("preregistered", "*")):
            r = pts[pts["role"] == role]
            ax.scatter(r["x"], r["y"], color=color, marker=marker, s=35, alpha=0.8, edgecolors="white", linewidths=0.3)
        c = tables.curve("post_training", t, "PC-1..3")
        ax.plot(c["x"], c["y_hat"], color=color, lw=2, label=f"{row['label']}: {row['form']}")
        ax.fill_between(c["x"], c["band_lo"], c["band_hi"], color=color, alpha=0.2, lw=0)
        data += [pts.assign(layer="points"), c.assign(layer="curve", target=t)]
    ax.set_xlabel("log10 Llama-2-equiv. FLOPs (1E21)")
    ax.set_ylabel("GSM8K accuracy")
    ax.legend(fontsize=8, loc="upper left")
    ax.set_title("Post-training interventions (o train, X test, * pre-registered)", fontsize=10)
    w = weights_heatmap(fig.add_subplot(gs[1]), tables, [("post_training", t, "PC-1..3") for t in GSM])
    fig.tight_layout()
    return fig, pd.concat(data + [w.assign(layer="weights")], ignore_index=True)


def fig9(tables):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    c = tables.curves.get("post_training", pd.DataFrame())
    if c.empty:
        return fig, c
    c = c[(c["target"] == "gsm8k_cot") & (c["predictors"] == "PC-1..3")]
    refs = tables.references["post_training"]
    refs = refs[(refs["target"] == "gsm8k_cot") & (refs["predictors"] == "PC-1..3")]
    for i, (fam, g) in enumerate(c.groupby("reference_family", sort=False)):
        form = refs.loc[refs["family"] == fam, "form"]
        ax.plot(g["x"], g["y_hat"], color=PALETTE[i % len(PALETTE)], lw=2,
                label=f"{fam}: {form.iloc[0] if len(form) else ''}")
        ax.fill_between(g["x"], g["band_lo"], g["band_hi"], color=PALETTE[i % len(PALETTE)], alpha=0.15, lw=0)
    ax.set_xlabel("log10 f-equivalent FLOPs (1E21)")
    ax.set_ylabel("GSM8K CoT accuracy")
    ax.legend(fontsize=8)
    ax.set_title("One CoT law in each family's own compute", fontsize=10)
    fig.tight_layout()
    return fig, c


def figC3(tables):
    """Aggregated capability index P_m against log10 FLOPs, per family (target-specific)."""
    import matplotlib.pyplot as plt

    panels = [("emergent", "word_unscramble"), ("emergent", "persian_qa"),
              ("emergent_arithmetic", "arithmetic_3ds"), ("emergent_arithmetic", "arithmetic_2dm")]
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.6), squeeze=False)
    data = []
    for ax, (exp, t) in zip(axes[0], panels):
        if not tables.has(exp, t, "PC-1..3"):
            ax.axis("off")
            continue
        p = tables.points(exp, t, "PC-1..3").dropna(subset=["log10_flops", "index"])
        fams = [f for f in p[D.FAMILY].unique()]
        style = family_style(fams)
        r2s = {}
        for fam, g in p.groupby(D.FAMILY, sort=False):
            color, marker = style[fam]
            ax.scatter(g["log10_flops"], g["index"], color=color, marker=marker, s=25)
            if len(g) > 2 and np.ptp(g["log10_flops"]) > 0:
                w, b = np.polyfit(g["log10_flops"], g["index"], 1)
                pred = w * g["log10_flops"] + b
                ss = ((g["index"] - g["index"].mean()) ** 2).sum()
                r2s[fam] = 1 - ((g["index"] - pred) ** 2).sum() / ss if ss > 0 else np.nan
                xs = np.linspace(g["log10_flops"].min(), g["log10_flops"].max(), 10)
                ax.plot(xs, w * xs + b, color=color, ls="--", lw=1)
        r2_avg = float(np.nanmean(list(r2s.values()))) if r2s else np.nan
        ax.set_title(f"{t}\nR²avg = {r2_avg:.2f}, R²(Llama-2) = {r2s.get('Llama-2', np.nan):.2f}", fontsize=9)
        ax.set_xlabel("log10 FLOPs (1E21)")
        ax.set_ylabel("P = α + βᵀS")
        data.append(p.assign(r2_family=p[D.FAMILY].map(r2s), r2_avg=r2_avg))
    fig.tight_layout()
    return fig, pd.concat(data, ignore_index=True) if data else pd.DataFrame()


def _sweep_fig(specs):
    def build(tables):
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(len(specs), max(len(s[2]) for s in specs), figsize=(4.2 * max(len(s[2]) for s in specs),
                                 3.4 * len(specs)), squeeze=False)
        data = []
        for i, (exp, sweep, targets) in enumerate(specs):
            sw = tables.sweeps.get(exp, pd.DataFrame())
            for j, t in enumerate(targets):
                ax = axes[i][j]
                if sw.empty:
                    ax.axis("off")
                    continue
                g = sw[(sw["sweep"] == sweep) & (sw["target"] == t) & sw["status"].isin(["ok", "degenerate"])]
                for k, (pred, h) in enumerate(g.groupby("predictors", sort=False)):
                    aue = area_under_error(h["test_ratio"], h["mse_test"])
                    ax.plot(h["test_ratio"], h["mse_test"], marker="o", ms=3, color=PALETTE[k % len(PALETTE)],
                            label=f"{pred} (AUE {aue:.3f})")
                ax.set_yscale("log")
                ax.invert_xaxis()
                ax.set_xlabel("test-set ratio")
                ax.set_ylabel("test MSE")
                ax.set_title(f"{t} · {sweep}", fontsize=10)
                ax.legend(fontsize=7)
                data.append(g)
        fig.tight_layout()
        return fig, pd.concat(data, ignore_index=True) if data else pd.DataFrame()
    return build


def figC22(tables):
    """95 % bands: bootstrap band of the curve, per-model bootstrap and delta-method intervals."""
    import matplotlib.pyplot as plt

    panels = [("emergent", "word_unscramble", "PC-1..3"), ("post_training", "gsm8k_cot", "PC-1..3"),
              ("emergent", "word_unscramble", "log10_flops"), ("post_training", "gsm8k_cot", "log10_flops")]
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.6), squeeze=False)
    data = []
    for ax, (exp, t, pr) in zip(axes[0], panels):
        d = fit_panel(ax, tables, exp, t, pr)
        if not tables.has(exp, t, pr):
            continue
        p = tables.points(exp, t, pr)
        if "band_lo" in p:
            ax.errorbar(p["x"], p["y_hat"], yerr=[p["y_hat"] - p["band_lo"], p["band_hi"] - p["y_hat"]],
                        fmt="none", ecolor="0.3", elinewidth=0.8, capsize=2, label="bootstrap 95 %")
            ax.errorbar(p["x"] + 0.02, p["y_hat"], yerr=[p["y_hat"] - p["delta_lo"], p["delta_hi"] - p["y_hat"]],
                        fmt="none", ecolor="tab:purple", elinewidth=0.8, capsize=2, label="delta method 95 %")
            ax.legend(fontsize=7, loc="lower right")
        data.append(d)
    fig.tight_layout()
    return fig, pd.concat(data, ignore_index=True)


EM4 = [("emergent", "word_unscramble"), ("emergent", "persian_qa"),
       ("emergent_arithmetic", "arithmetic_3ds"), ("emergent_arithmetic", "arithmetic_2dm")]
PCS = ["PC-1", "PC-1..2", "PC-1..3", "PC-1..4"]
SIZE_FLOPS_PCS = ["log10_size", "log10_flops", "PC-1..3"]

_PAPER_FIGURES: dict[str, Callable] = {
    "fig4": _fig_grid([[(e, t, "log10_flops") for e, t in EM4], [(e, t, "PC-1..3") for e, t in EM4]]),
    "fig5": fig5,
    "fig6": fig6,
    "fig9": fig9,
    "figC3": figC3,
    "figC5": _fig_grid([[("post_training", t, "log10_flops") for t in GSM],
                        [("post_training", t, "PC-1..3") for t in GSM]]),
    "figC7": _fig_grid([[("post_training", t, p) for p in ["log10_flops", *PCS]] for t in GSM]),
    "figC8": _fig_grid([[(e, t, p) for p in ["log10_flops", *PCS]] for e, t in EM4]),
    "figC9": _fig_grid([[("agentic", t, p) for p in PCS] for t in ("agentbench", "agentboard")]),
    "figC10": _sweep_fig([("post_training", "flops_rank", GSM)]),
    "figC11": _sweep_fig([("emergent", "flops_rank", ["word_unscramble", "persian_qa", "ipa_transliterate"]),
                          ("emergent", "accuracy_rank", ["word_unscramble", "persian_qa", "ipa_transliterate"])]),
    "figC12": _fig_grid([[(e, t, "log10_size") for e, t in EM4]]),
    "figC13": _fig_grid([[("emergent_arithmetic_cutoff84", t, p) for p in SIZE_FLOPS_PCS]
                         for t in ("arithmetic_3ds", "arithmetic_2dm")]),
    "figC14": _fig_grid([[(e, t, p) for p in SIZE_FLOPS_PCS] for e, t in
                         [("emergent", "ipa_transliterate"), ("emergent_arithmetic", "arithmetic_3da"),
                          ("emergent_arithmetic", "arithmetic_2da")]]),
    "figC15": _fig_grid([[("post_training", t, p) for p in SIZE_FLOPS_PCS] for t in GSM]),
    "figC16": _fig_grid([[("post_training", t, p) for p in SIZE_FLOPS_PCS] for t in ("bbh_naive", "bbh_cot")]),
    "figC20": _fig_grid([[("emergent_pushed_cutoffs", t, "PC-1..3")
                          for t in ("word_unscramble", "persian_qa", "ipa_transliterate")]
                         + [("agentic_80_20", "agentbench", "PC-1..3")]]),
    "figC21": _fig_grid([[("single_family_qwen15", t, "log10_flops")
                          for t in ("word_unscramble", "persian_qa", "ipa_transliterate")],
                         [("single_family_opt", t, "log10_flops") for t in ("arithmetic_3ds", "arithmetic_2dm")]]),
    "figC22": figC22,
    "figC6": _fig_grid([[("leaderboard_v2", t, p) for t in ("gpqa", "math_lvl5", "bbh")]
                        for p in ("log10_flops", "PC-1..3")]),
}
PAPER_FIGURES: Registry[Callable] = Registry("law figure")
for _name, _build in _PAPER_FIGURES.items():
    PAPER_FIGURES.register(_name, _build)


OVERVIEW_PREDICTORS = ("PC-1..3", "log10_flops")


def experiment_overview(tables: FitTables, exp: str):
    """The figure any configured experiment gets: per target, its first (main) predictor set and
    the FLOPs baseline (every other set is in the fit table; the paper's are in the paper figures)."""
    f = tables.fits[exp]
    targets = list(dict.fromkeys(f["target"]))
    preds = list(dict.fromkeys(f["predictors"]))
    preds = [p for i, p in enumerate(preds) if i == 0 or p in OVERVIEW_PREDICTORS]
    return grid(tables, [[(exp, t, p) if tables.has(exp, t, p) else None for p in preds] for t in targets])


def render_law_figures(fits_dir, experiments: list[str], figures: dict[str, dict[str, str]],
                       overviews: dict[str, dict[str, str]]) -> None:
    """Stage function of rule `law_figures`: every paper figure and one overview per experiment,
    in one process (each Python start costs ~2 s)."""
    use_style()
    import matplotlib.pyplot as plt

    # Multi-panel grids: 110 dpi keeps text legible and halves the rasterisation time.
    plt.rcParams["savefig.dpi"] = 110
    tables = FitTables(fits_dir, experiments)
    for name, paths in figures.items():
        build = PAPER_FIGURES.get(name)
        fig, data = build(tables)
        save_figure(fig, data, paths["png"], paths.get("pdf"), paths["csv"])
        log.info("figure %s: %d plotted rows", name, len(data))
    for exp, paths in overviews.items():
        fig, data = experiment_overview(tables, exp)
        save_figure(fig, data, paths["png"], paths.get("pdf"), paths["csv"])
        log.info("overview of %s: %d plotted rows", exp, len(data))
