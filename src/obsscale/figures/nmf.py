"""Fig C.19: non-negative matrix factorisation of the benchmark matrix.

Drawn from the tables of rule `nmf` alone (results/nmf/{set}/: components, weights, family laws,
error curve); nothing is refitted here.  Panels: (a) each component's benchmark weights (rows of
H), (b) the relative reconstruction error against the number of components with the chosen k
marked, then one panel per component: its model scores against log10 training FLOPs, coloured by
family, with each family's OLS line (dashed) and the mean R² over families with ≥ 3 models.
"""

from __future__ import annotations

import logging
from typing import Sequence

import numpy as np
import pandas as pd

from obsscale.capability import scores as D
from obsscale.figures.style import PALETTE, family_style, save_figure, use_style

log = logging.getLogger(__name__)


def _weights_panel(ax, components: pd.DataFrame) -> pd.DataFrame:
    import seaborn as sns

    table = components.set_index("component")
    sns.heatmap(table, annot=True, fmt=".2f", cmap="Blues", vmin=0, ax=ax, cbar=False, annot_kws={"fontsize": 8})
    ax.set_xlabel("")
    ax.set_ylabel("")
    ax.set_title("(a) component weights H (unit-norm rows)", fontsize=10)
    ax.tick_params(axis="x", labelrotation=30, labelsize=8)
    ax.tick_params(axis="y", labelrotation=0)
    data = table.reset_index().melt(id_vars="component", var_name="metric", value_name="y")
    return data.assign(panel="weights")


def _error_panel(ax, curve: pd.DataFrame) -> pd.DataFrame:
    ax.plot(curve["k"], curve["relative_error"], "o-", color=PALETTE[0], ms=4)
    chosen = curve[curve["chosen"]]
    ax.scatter(chosen["k"], chosen["relative_error"], s=90, facecolors="none", edgecolors=PALETTE[3],
               linewidths=1.5, zorder=3, label=f"chosen k = {int(chosen['k'].iloc[0])}" if len(chosen) else None)
    ax.set_yscale("log")
    ax.set_xlabel("number of components k")
    ax.set_ylabel("‖B − WH‖ / ‖B‖")
    ax.set_title("(b) reconstruction error vs k", fontsize=10)
    if len(chosen):
        ax.legend(fontsize=8)
    return pd.DataFrame({"panel": "error_curve", "component": "", "metric": "", "x": curve["k"],
                         "y": curve["relative_error"]})


def _component_panel(ax, weights: pd.DataFrame, laws: pd.DataFrame, component: str,
                     family_order: Sequence[str], min_models: int = 3) -> tuple[pd.DataFrame, list]:
    df = weights[weights["log10_flops"].notna()]
    fams = [f for f in family_order if f in set(df[D.FAMILY])]
    fams += [f for f in dict.fromkeys(df[D.FAMILY]) if f not in fams]
    style = family_style(fams)
    rows = []
    for fam in fams:
        g = df[df[D.FAMILY] == fam]
        color, marker = style[fam]
        ax.scatter(g["log10_flops"], g[component], color=color, marker=marker, s=30, label=fam,
                   edgecolor="white", linewidth=0.4)
        rows.append(pd.DataFrame({"kind": "model", "family": fam, "model": g[D.MODEL], "x": g["log10_flops"],
                                  "y": g[component]}))
        law = laws[(laws["family"] == fam) & (laws["component"] == component)]
        if len(law) and len(g) >= 2:
            xs = np.linspace(g["log10_flops"].min(), g["log10_flops"].max(), 10)
            ys = law["slope"].iloc[0] * xs + law["intercept"].iloc[0]
            ax.plot(xs, ys, "--", color=color, lw=1)
            rows.append(pd.DataFrame({"kind": "fit", "family": fam, "model": "", "x": xs, "y": ys}))
    sel = laws[(laws["component"] == component) & (laws["n"] >= min_models)]
    r2_avg = float(sel["r2"].mean()) if len(sel) else np.nan
    ax.set_title(f"{component}: R²avg = {r2_avg:.2f}", fontsize=10)
    ax.set_xlabel("log10 training FLOPs (1E21)")
    ax.set_ylabel(f"{component} score")
    data = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()
    handles = ax.get_legend_handles_labels()
    return data.assign(panel="component_vs_flops", component=component, r2_avg=r2_avg), handles


def nmf_figure(components: pd.DataFrame, weights: pd.DataFrame, laws: pd.DataFrame, curve: pd.DataFrame,
               family_order: Sequence[str]):
    """(figure, plotted rows) of Fig C.19."""
    import matplotlib.pyplot as plt

    names = list(components["component"])
    ncol = max(2, min(len(names), 4))
    nrow = 1 + -(-len(names) // ncol)
    fig = plt.figure(figsize=(3.9 * ncol, 3.4 * nrow))
    gs = fig.add_gridspec(nrow, ncol)
    split = max(1, ncol - 1)
    data = [_weights_panel(fig.add_subplot(gs[0, :split]), components),
            _error_panel(fig.add_subplot(gs[0, split:]), curve)]
    handles = ([], [])
    for i, comp in enumerate(names):
        ax = fig.add_subplot(gs[1 + i // ncol, i % ncol])
        part, handles = _component_panel(ax, weights, laws, comp, family_order)
        data.append(part)
    fig.legend(*handles, loc="lower center", ncol=8, fontsize=7, bbox_to_anchor=(0.5, -0.02 - 0.03 * nrow))
    fig.tight_layout()
    return fig, pd.concat(data, ignore_index=True)


def render_nmf_figure(families_yaml, components_csv, weights_csv, family_laws_csv, error_curve_csv,
                      png, pdf, csv) -> None:
    """Fig C.19 from the NMF tables (drawn by the job of the NMF's capability set)."""
    use_style()
    order = D.load_families(families_yaml).order
    fig, data = nmf_figure(pd.read_csv(components_csv), pd.read_csv(weights_csv), pd.read_csv(family_laws_csv),
                           pd.read_csv(error_curve_csv), order)
    save_figure(fig, data, png, pdf, csv)
    log.info("figure figC19: %d plotted rows", len(data))
