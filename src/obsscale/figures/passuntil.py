"""The five PassUntil figures (spec §5), one panel per (series, task); each beside its CSV.

They draw the law stage's tables: law.csv (the task law fitted without the held-out largest
model(s), its prediction, the curvature class) and law_curves.csv (the points of those laws and of the
curvature fits), so a figure shows exactly the law the stage reports, and nothing here fits."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from obsscale.figures.style import HIGHLIGHT_COLOR, PALETTE, TEST_COLOR, TRAIN_COLOR, save_figure, use_style
from obsscale.core.registry import Registry


def _load(runs: list[dict]) -> list[dict]:
    out = []
    for run in runs:
        summ = pd.read_csv(run["summary"]).sort_values("N")
        # A design with r = 1 (opted in) is labelled in every panel title and CSV row.
        notes = summ["note"].dropna().unique() if "note" in summ else []
        series = run["series"] + "".join(f" [{n}]" for n in notes if n)
        out.append({**run, "series": series, "est": pd.read_csv(run["estimates"]), "summ": summ,
                    "law": pd.read_csv(run["law"]).set_index("level"), "curves": pd.read_csv(run["curves"])})
    return out


def _panels(n: int):
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 3.8 * rows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, list(axes.flat[:n])


def _draw(runs: list[dict], png: str, pdf: str, csv: str, panel) -> None:
    """One panel per run: `panel(ax, run, rows)` draws it and appends its plotted points to `rows`;
    the panel is titled by series and task and given a legend, and the figure is saved beside them."""
    use_style()
    runs = _load(runs)
    fig, axes = _panels(len(runs))
    rows = []
    for ax, run in zip(axes, runs):
        panel(ax, run, rows)
        ax.set_title(f"{run['series']} / {run['task']}")
        ax.legend(fontsize=7)
    save_figure(fig, pd.DataFrame(rows), png, pdf, csv)


def _curve(run, kind: str) -> pd.DataFrame:
    c = run["curves"]
    return c[c["kind"] == kind]


def _held_out(run) -> pd.Series:
    """Models at or above the law's target size: held out of the fit."""
    law = run["law"]
    target = law.loc["task", "N_target"] if "task" in law.index else np.inf
    return run["summ"]["N"] >= target


def loglog(pu) -> np.ndarray:
    """F = log(−log PU), the axis of the curvature test."""
    return np.log(-np.log(np.asarray(pu, float)))


def pu_vs_n(runs: list[dict], png: str, pdf: str, csv: str) -> None:
    """1. PU vs N (log y) with the law fitted on the smaller models and the held-out prediction."""
    _draw(runs, png, pdf, csv, _pu_vs_n_panel)


def _pu_vs_n_panel(ax, run: dict, rows: list) -> None:
    s, law = run["summ"], run["law"]
    target = law.loc["task", "N_target"]
    train, test = s[s["N"] < target], s[s["N"] >= target]
    for part, color, label in ((train, TRAIN_COLOR, "fit"), (test, TEST_COLOR, "held out")):
        err = [part["PU"] - part["PU_low"], part["PU_high"] - part["PU"]]
        ax.errorbar(part["N"], part["PU"], yerr=err, fmt="o", color=color, label=f"PU ({label})")
        rows += [{"series": run["series"], "task": run["task"], "kind": f"observed_{label.replace(' ', '_')}",
                  "N": n, "PU": p, "low": lo, "high": hi}
                 for n, p, lo, hi in zip(part["N"], part["PU"], part["PU_low"], part["PU_high"])]
    curve = _curve(run, "task_law")
    if len(curve):
        task = law.loc["task"]
        ax.plot(curve["N"], curve["value"], color=TRAIN_COLOR, lw=1.5,
                label=f"law: c={task['c']:.3g}, α={task['alpha']:.3g}")
        rows += [{"series": run["series"], "task": run["task"], "kind": "law", "N": n, "PU": p}
                 for n, p in zip(curve["N"], curve["value"])]
        # The prediction law.csv selects: the law's, or the quadratic's where the curvature test on
        # the fitted models rejects the law's form.
        curved = "task_curved" in law.index and str(law.loc["task_curved"].get("selected")) == "True"
        pred = law.loc["task_curved"] if curved else task
        quad = _curve(run, "task_curved")
        if curved and len(quad):
            ax.plot(quad["N"], quad["value"], "--", color=HIGHLIGHT_COLOR, lw=1.2,
                    label=f"quadratic in log N (fitted models: {pred['curvature_class']})")
            rows += [{"series": run["series"], "task": run["task"], "kind": "quadratic", "N": n, "PU": v}
                     for n, v in zip(quad["N"], quad["value"])]
        label = f"prediction (quadratic: {pred['curvature_class']})" if curved else "prediction"
        yerr = [[pred["predicted"] - pred["predicted_low"]], [pred["predicted_high"] - pred["predicted"]]]
        if np.all(np.isfinite(yerr)):
            ax.errorbar([target], [pred["predicted"]], yerr=yerr, fmt="*", ms=12, color=HIGHLIGHT_COLOR,
                        label=label)
        else:
            ax.plot([target], [pred["predicted"]], "*", ms=12, color=HIGHLIGHT_COLOR, label=label)
        rows.append({"series": run["series"], "task": run["task"], "kind": "prediction", "N": target,
                     "PU": pred["predicted"], "low": pred["predicted_low"], "high": pred["predicted_high"],
                     "method": "quadratic" if curved else "law"})
    ax.set(xscale="log", yscale="log", xlabel="N", ylabel="PassUntil PU")


def loglog_curvature(runs: list[dict], png: str, pdf: str, csv: str) -> None:
    """2. log(-log PU) vs log N with the linear and quadratic fits and the curvature class."""
    _draw(runs, png, pdf, csv, _loglog_curvature_panel)


def _loglog_curvature_panel(ax, run: dict, rows: list) -> None:
    s = run["summ"]
    ok = (s["PU"] > 0) & (s["PU"] < 1)
    held = _held_out(run)
    for part, color, label in ((ok & ~held, TRAIN_COLOR, "observed (fit)"), (ok & held, TEST_COLOR, "held out")):
        x, F = np.log(s.loc[part, "N"]), loglog(s.loc[part, "PU"])
        ax.plot(x, F, "o", color=color, label=label)
        rows += [{"series": run["series"], "task": run["task"], "kind": "observed", "logN": a, "F": b,
                  "held_out": label == "held out"} for a, b in zip(x, F)]
    for kind, style, color in (("linear", "-", TRAIN_COLOR), ("quadratic", "--", TEST_COLOR)):
        c = _curve(run, kind)
        if len(c):
            ax.plot(c["logN"], c["value"], style, color=color, label=kind)
            rows += [{"series": run["series"], "task": run["task"], "kind": kind, "logN": a, "F": b}
                     for a, b in zip(c["logN"], c["value"])]
    curv = run["law"].loc["task"] if "task" in run["law"].index else pd.Series(
        {"curvature_class": "", "evidence": ""})
    ax.set(xlabel="log N", ylabel="log(−log PU)")
    ax.text(0.02, 0.03, f"{curv['curvature_class']}\n{curv['evidence']}", transform=ax.transAxes,
            fontsize=7, va="bottom")
    for r in rows:
        if r["series"] == run["series"] and r["task"] == run["task"]:
            r["curvature_class"] = curv["curvature_class"]


def instance_curves(runs: list[dict], png: str, pdf: str, csv: str) -> None:
    """3. Per-instance p_hat vs N (thin), their instance-law aggregate and the task-level fit."""
    _draw(runs, png, pdf, csv, _instance_curves_panel)


def _instance_curves_panel(ax, run: dict, rows: list) -> None:
    est, s = run["est"], run["summ"]
    for inst, g in est.groupby("instance"):
        g = g.sort_values("N")
        ax.plot(g["N"], g["p_hat"].where(g["p_hat"] > 0), lw=0.7, alpha=0.5, color="grey")
        rows += [{"series": run["series"], "task": run["task"], "kind": "instance", "instance": inst,
                  "N": n, "p": p, "censored": c} for n, p, c in zip(g["N"], g["p_hat"], g["censored"])]
    held = _held_out(run)
    ax.plot(s.loc[~held, "N"], s.loc[~held, "PU"], "o", color=TRAIN_COLOR, label="task PU (fit)")
    ax.plot(s.loc[held, "N"], s.loc[held, "PU"], "o", color=TEST_COLOR, label="task PU (held out)")
    for kind, style, color, label in (("instance_aggregate", "-", HIGHLIGHT_COLOR, "mean of instance laws"),
                                      ("task_law", "--", TEST_COLOR, "task-level law")):
        c = _curve(run, kind)
        if len(c):
            ax.plot(c["N"], c["value"], style, color=color, label=label)
            rows += [{"series": run["series"], "task": run["task"], "kind": kind, "N": n, "p": p}
                     for n, p in zip(c["N"], c["value"])]
    ax.set(xscale="log", yscale="log", xlabel="N", ylabel="p̂ (instance) / PU")


def resolution(runs: list[dict], png: str, pdf: str, csv: str) -> None:
    """4. PassUntil PU next to greedy accuracy and pass@1 on the same models (symlog y: zeros show)."""
    _draw(runs, png, pdf, csv, _resolution_panel)


def _resolution_panel(ax, run: dict, rows: list) -> None:
    s = run["summ"]
    for col, color, label in (("PU", TRAIN_COLOR, "PassUntil PU"), ("pass_at_1", PALETTE[1], "pass@1"),
                              ("greedy", TEST_COLOR, "greedy")):
        ax.plot(s["N"], s[col], "o-", color=color, label=label)
        rows += [{"series": run["series"], "task": run["task"], "metric": col, "N": n, "value": v}
                 for n, v in zip(s["N"], s[col])]
    positive = s["PU"][s["PU"] > 0]
    ax.set_xscale("log")
    ax.set_yscale("symlog", linthresh=float(positive.min()) if len(positive) else 1e-5)
    ax.set(xlabel="N", ylabel="pass rate")


def sampling_cost(runs: list[dict], png: str, pdf: str, csv: str) -> None:
    """5. Attempts used per instance vs p_hat; censored instances (K = K_max) at their upper bound."""
    _draw(runs, png, pdf, csv, _sampling_cost_panel)


def _sampling_cost_panel(ax, run: dict, rows: list) -> None:
    est = run["est"]
    done, cens = est[~est["censored"]], est[est["censored"]]
    ax.plot(done["p_hat"], done["K"], "o", ms=4, color=TRAIN_COLOR, label="finished (r passes)")
    ax.plot(cens["high"], cens["K"], "v", ms=5, mfc="none", color=TEST_COLOR,
            label="censored at K_max (upper bound)")
    rows += [{"series": run["series"], "task": run["task"], "model": m, "instance": i, "p": p, "K": k,
              "censored": c}
             for m, i, p, k, c in zip(est["model"], est["instance"],
                                      np.where(est["censored"], est["high"], est["p_hat"]),
                                      est["K"], est["censored"])]
    pos = est.loc[est["p_hat"] > 0, "p_hat"]
    if len(pos):
        grid = np.logspace(np.log10(pos.min()), 0, 20)
        r = int(est.loc[~est["censored"], "passes"].max()) if len(done) else 1
        ax.plot(grid, r / grid, ":", color="grey", label=f"E[K] = {r}/p")
    ax.set(xscale="log", yscale="log", xlabel="p̂", ylabel="attempts K")


FIGURES: Registry = Registry("PassUntil figure")
FIGURES.register("passuntil_pu_vs_n", pu_vs_n)
FIGURES.register("passuntil_loglog", loglog_curvature)
FIGURES.register("passuntil_instances", instance_curves)
FIGURES.register("passuntil_resolution", resolution)
FIGURES.register("passuntil_sampling_cost", sampling_cost)


def render_figure(name: str, runs: list[dict], png: str, pdf: str, csv: str) -> None:
    FIGURES.get(name)(runs, png, pdf, csv)
