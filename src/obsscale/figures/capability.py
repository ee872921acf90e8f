"""Figures of the capability space: Fig 2a/2b, 3, 8 and C.1, C.2, C.4 of the paper.

Each function returns `(figure, data)` where `data` is the long-format table of exactly what is
drawn; `render_capability_figures` writes them with `style.save_figure`.  The per-family lines and
their bands are read from the family-law stage's tables (results/family_laws/<set>/): nothing here
fits.
"""

from __future__ import annotations

import math
from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from obsscale.capability import scores as D
from obsscale.figures.style import family_style, save_figure, use_style

NA_GAP = 0.6  # distance of the "N/A" column from the largest log10 FLOPs, in log10 units


def explained_variance_figure(evr: pd.DataFrame, title: str = "") -> tuple[plt.Figure, pd.DataFrame]:
    """Fig 2a / C.1a: explained-variance ratio of each PC with the cumulative ratio."""
    fig, ax = plt.subplots(figsize=(5, 3.6))
    x = np.arange(len(evr))
    ax.bar(x, evr["ratio"], color=sns.color_palette("deep")[0], label="per component")
    ax.plot(x, evr["cumulative"], "o-", color=sns.color_palette("deep")[3], label="cumulative")
    for xi, c in zip(x, evr["cumulative"]):
        ax.annotate(f"{c:.1%}", (xi, c), textcoords="offset points", xytext=(0, 6), ha="center", fontsize=9)
    ax.set_xticks(x, evr["component"])
    ax.set_ylim(0, 1.08)
    ax.set_ylabel("Explained variance ratio")
    ax.legend(loc="center right")
    if title:
        ax.set_title(title)
    return fig, evr[["component", "ratio", "cumulative"]].copy()


def loadings_figure(loadings: pd.DataFrame, n_components: int = 3, title: str = ""
                    ) -> tuple[plt.Figure, pd.DataFrame]:
    """Fig 2b / C.1b: heatmap of the loading vectors γ of the first PCs."""
    table = loadings[loadings["component"] != "mean"].head(n_components).set_index("component")
    fig, ax = plt.subplots(figsize=(1.0 + 0.9 * table.shape[1], 0.6 + 0.7 * n_components))
    sns.heatmap(table, annot=True, fmt=".2f", cmap="coolwarm", center=0, vmin=-1, vmax=1, ax=ax, cbar=True)
    ax.set_xlabel("")
    ax.set_ylabel("")
    if title:
        ax.set_title(title)
    data = table.reset_index().melt(id_vars="component", var_name="metric", value_name="loading")
    return fig, data


def _line_grid(x: pd.Series, pad: float = 0.07, n: int = 50) -> np.ndarray:
    lo, hi = float(x.min()), float(x.max())
    span = hi - lo if hi > lo else 1.0
    return np.linspace(lo - pad * span, hi + pad * span, n)


def _law_rows(laws: pd.DataFrame, lines: pd.DataFrame, component: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    return laws[laws["component"] == component], lines[lines["component"] == component]


def average_r2(laws: pd.DataFrame, component: str, min_models: int = 3) -> float:
    """Unweighted mean of per-family R² over families with at least `min_models` models."""
    t = laws[(laws["component"] == component) & (laws["n"] >= min_models)]
    return float(t["r2"].mean())


def family_facets_figure(scores: pd.DataFrame, laws: pd.DataFrame, lines: pd.DataFrame, component: str,
                         family_order: Sequence[str], min_models: int = 3) -> tuple[plt.Figure, pd.DataFrame]:
    """Fig 3 / C.2: one panel per family, `component` vs log10 FLOPs with the OLS line, its 95 %
    confidence band of the mean, R² and the line's equation (from the family-law tables)."""
    known = scores[scores[D.FLOPS].notna()].copy()
    known["x"] = D.log10_flops(known[D.FLOPS])
    laws, lines = _law_rows(laws, lines, component)
    fitted = set(laws.loc[laws["n"] >= min_models, "family"])
    fams = [f for f in family_order if f in fitted]
    ncol = min(5, len(fams))
    nrow = math.ceil(len(fams) / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.2 * ncol, 2.8 * nrow), squeeze=False)
    rows = []
    for ax, fam in zip(axes.flat, fams):
        g = known[known[D.FAMILY] == fam]
        band = lines[lines["family"] == fam]
        row = laws[laws["family"] == fam].iloc[0]
        ax.fill_between(band["x"], band["low"], band["high"], alpha=0.25, color=sns.color_palette("deep")[0])
        ax.plot(band["x"], band["mean"], color=sns.color_palette("deep")[0])
        ax.scatter(g["x"], g[component], color=sns.color_palette("deep")[3], zorder=3, s=30)
        ax.set_title(fam, fontsize=11)
        ax.text(0.04, 0.96, f"R² = {row['r2']:.3f}\ny = {row['slope']:.2f}x {row['intercept']:+.2f}",
                transform=ax.transAxes, va="top", fontsize=9)
        for _, m in g.iterrows():
            rows.append({"kind": "model", "family": fam, "model": m[D.MODEL], "x": m["x"], "y": m[component]})
        for _, b in band.iterrows():
            rows.append({"kind": "fit", "family": fam, "x": b["x"], "y": b["mean"], "low": b["low"], "high": b["high"]})
        rows.append({"kind": "law", "family": fam, "slope": row["slope"], "intercept": row["intercept"],
                     "r2": row["r2"], "n": row["n"]})
    for ax in list(axes.flat)[len(fams):]:
        ax.set_visible(False)
    fig.supxlabel("log10 training FLOPs (1E21)")
    fig.supylabel(component)
    fig.tight_layout()
    data = pd.DataFrame(rows, columns=["kind", "family", "model", "x", "y", "low", "high", "slope",
                                       "intercept", "r2", "n"])
    data.insert(1, "component", component)
    return fig, data


def unified_panel(ax: plt.Axes, scores: pd.DataFrame, column: str, family_order: Sequence[str],
                  laws: pd.DataFrame, lines: pd.DataFrame, floor: float | None = None) -> tuple[pd.DataFrame, float]:
    """Fig 8 / C.4 panel: every family in one panel with dashed per-family OLS lines (over each
    family's FLOPs range); models without FLOPs are drawn in an extra "N/A" column.  Returns
    (plotted rows, R²_avg)."""
    df = scores[scores[column].notna()].copy()
    df["x"] = D.log10_flops(df[D.FLOPS])
    has_x = df["x"].notna()
    x_max = float(df.loc[has_x, "x"].max())
    na_x = x_max + NA_GAP
    fams = [f for f in family_order if f in set(df[D.FAMILY])]
    style = family_style(fams)
    laws, lines = _law_rows(laws, lines, column)
    rows = []
    for fam in fams:
        g = df[df[D.FAMILY] == fam]
        color, marker = style[fam]
        xs = g["x"].fillna(na_x)
        ax.scatter(xs, g[column], color=color, marker=marker, s=40, label=fam, edgecolor="white", linewidth=0.5)
        for (_, m), xv in zip(g.iterrows(), xs):
            rows.append({"kind": "model", "family": fam, "model": m[D.MODEL], "x": m["x"], "x_plot": xv,
                         "y": m[column]})
        line = lines[lines["family"] == fam]
        line = line[(line["x"] >= line["x_min"]) & (line["x"] <= line["x_max"])]
        if len(line):
            ax.plot(line["x"], line["mean"], "--", color=color, linewidth=1)
            for _, b in line.iterrows():
                rows.append({"kind": "fit", "family": fam, "x": b["x"], "x_plot": b["x"], "y": b["mean"]})
    r2_avg = average_r2(laws, column, min_models=3)
    if (~has_x).any():
        ticks = [t for t in ax.get_xticks() if t <= x_max]
        ax.set_xticks([*ticks, na_x], [f"{t:g}" for t in ticks] + ["N/A"])
        ax.axvline(x_max + NA_GAP / 2, color="grey", linewidth=0.8, linestyle=":")
    if floor is not None:
        ax.axhline(floor, color="red", linestyle="--", linewidth=1)
    ax.text(0.03, 0.96, f"R²_avg = {r2_avg:.3f}", transform=ax.transAxes, va="top")
    ax.set_ylabel(column)
    data = pd.DataFrame(rows, columns=["kind", "family", "model", "x", "x_plot", "y"])
    data.insert(0, "column", column)
    data["r2_avg"] = r2_avg
    return data, r2_avg


def unified_figure(scores: pd.DataFrame, column: str, family_order: Sequence[str], laws: pd.DataFrame,
                   lines: pd.DataFrame) -> tuple[plt.Figure, pd.DataFrame]:
    """Fig 8: PC-1 of every family against log10 FLOPs in one panel."""
    fig, ax = plt.subplots(figsize=(8, 5.5))
    data, _ = unified_panel(ax, scores, column, family_order, laws, lines)
    ax.set_xlabel("log10 training FLOPs (1E21)")
    ax.legend(bbox_to_anchor=(1.02, 1), loc="upper left", fontsize=8, ncol=1)
    return fig, data


def benchmarks_figure(table: pd.DataFrame, metrics: Sequence[str], family_order: Sequence[str],
                      floors: dict[str, float], laws: pd.DataFrame, lines: pd.DataFrame
                      ) -> tuple[plt.Figure, pd.DataFrame]:
    """C.4: each raw benchmark against log10 FLOPs, unified per-family plots with R²_avg and the
    benchmark's random-guess floor."""
    ncol = 4
    nrow = math.ceil(len(metrics) / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.2 * ncol, 3.6 * nrow), squeeze=False)
    parts = []
    for ax, metric in zip(axes.flat, metrics):
        part, _ = unified_panel(ax, table, metric, family_order, laws, lines, floor=floors.get(metric))
        ax.set_title(metric)
        parts.append(part)
    for ax in list(axes.flat)[len(metrics):]:
        ax.set_visible(False)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=7, fontsize=8, bbox_to_anchor=(0.5, -0.08))
    fig.supxlabel("log10 training FLOPs (1E21)")
    fig.tight_layout()
    return fig, pd.concat(parts, ignore_index=True)


def render_capability_figures(families_yaml, base_scores, base_explained_variance, base_loadings,
                              base_table, base_metrics: Sequence[str], outputs: dict[str, dict[str, str]],
                              family_laws, family_lines, benchmark_laws, benchmark_lines,
                              instruct_explained_variance=None, instruct_loadings=None,
                              facet_min_models: int = 3) -> None:
    """Stage function of rule `capability_figures`.  `outputs` maps a figure's file stem (see
    CAPABILITY_FIGURES) to its {png, pdf, csv} paths; the family laws and their lines are the
    tables of rule `family_laws` for the base set."""
    use_style()
    families = D.load_families(families_yaml)
    order = families.order
    scores = pd.read_csv(base_scores)
    evr = pd.read_csv(base_explained_variance)
    loadings = pd.read_csv(base_loadings)
    table = pd.read_csv(base_table)
    table = table[table[D.MODEL].isin(set(scores[D.MODEL]))]
    laws, lines = pd.read_csv(family_laws), pd.read_csv(family_lines)
    blaws, blines = pd.read_csv(benchmark_laws), pd.read_csv(benchmark_lines)

    def facets(component):
        return lambda: family_facets_figure(scores, laws, lines, component, order, facet_min_models)

    makers = {
        "fig2a_explained_variance": lambda: explained_variance_figure(evr),
        "fig2b_loadings": lambda: loadings_figure(loadings),
        "fig3_pc1_vs_flops_by_family": facets("PC-1"),
        "figC2_pc2_vs_flops_by_family": facets("PC-2"),
        "figC2_pc3_vs_flops_by_family": facets("PC-3"),
        "fig8_pc1_vs_flops_all_families": lambda: unified_figure(scores, "PC-1", order, laws, lines),
        "figC4_benchmarks_vs_flops": lambda: benchmarks_figure(table, list(base_metrics), order,
                                                               families.benchmark_floors, blaws, blines),
    }
    if instruct_explained_variance is not None:
        instruct_evr = pd.read_csv(instruct_explained_variance)
        instruct_loadings = pd.read_csv(instruct_loadings)
        makers["figC1a_instruct_explained_variance"] = lambda: explained_variance_figure(
            instruct_evr, "Instruction-tuned models")
        makers["figC1b_instruct_loadings"] = lambda: loadings_figure(
            instruct_loadings, title="Instruction-tuned models")
    unknown = sorted(set(outputs) - set(makers))
    if unknown:
        raise KeyError(f"unknown capability figure(s) {unknown}; known: {sorted(makers)}")
    for name, paths in outputs.items():
        fig, data = makers[name]()
        save_figure(fig, data, paths["png"], paths.get("pdf"), paths["csv"])

