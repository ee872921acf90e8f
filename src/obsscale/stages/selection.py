"""Stage functions of workflow/rules/selection.smk: the V-optimal guide tables (Table 1), the
held-out evaluation of selected subsets (Fig 7a, 7b, C.17, C.18) and its figures."""

from __future__ import annotations

import logging
import time
from typing import Any, Sequence

import pandas as pd

from obsscale.core.io import provenance, tallied_warnings, write_csv, write_json
from obsscale.selection.greedy import greedy_exchange_search
from obsscale.selection.heldout import (
    evaluation_frame,
    heldout_spec,
    heldout_targets,
    selection_curve,
    subset_curves,
    subset_fits,
    subset_predictions,
)
from obsscale.selection.pool import FamilyPool, capability_pool, guide_pool_frame
from obsscale.selection.search import Selection, best_by_budget, exact_family_search, selections_frame

log = logging.getLogger(__name__)


HEURISTIC_COLUMNS = ["pool", "budget", "exact_objective", "exact_families", "greedy_family_objective",
                     "greedy_family_families", "greedy_family_gap", "greedy_family_same_set",
                     "greedy_model_objective", "greedy_model_n_models", "greedy_model_models"]


def heuristic_rows(name: str, pool: FamilyPool, best: Sequence[Selection], include: Sequence[str],
                   max_families: int) -> list[dict]:
    """The greedy/exchange heuristic (families and single models) beside the exact choice."""
    rows = []
    for sel in best:
        fam = greedy_exchange_search(pool, sel.budget, include, max_groups=max_families)
        mod = greedy_exchange_search(pool, sel.budget, include, unit="model")
        gap = fam.objective / sel.objective - 1.0
        rows.append({
            "pool": name, "budget": sel.budget, "exact_objective": sel.objective,
            "exact_families": ";".join(sel.families),
            "greedy_family_objective": fam.objective,
            "greedy_family_families": ";".join(fam.families),
            # relative shortfall; differences below 1e-12 are rounding of summation order
            "greedy_family_gap": gap if abs(gap) > 1e-12 else 0.0,
            "greedy_family_same_set": set(fam.families) == set(sel.families),
            "greedy_model_objective": mod.objective,
            "greedy_model_n_models": mod.n_models,
            "greedy_model_models": ";".join(mod.models),
        })
    return rows


def write_guide_tables(scores_csv, families_yaml, settings: dict[str, dict], metrics: Sequence[str],
                       n_components: int, pca_components: int, imputation: dict | None,
                       max_families: int, budgets: Sequence[int], table_csv, heuristic_csv,
                       provenance_json, compare_heuristic: bool = True) -> pd.DataFrame:
    """Table 1: for each guide setting (a named candidate pool
    with its always-included families) run the exact family search and write the V-optimal choice
    per budget (paper Table 1); beside it, the greedy/exchange heuristic's objective on the same
    pools, to show how close it gets where the exact search can still run."""
    rows, heuristic, stats = [], [], {}
    for name, setting in settings.items():
        models, families = guide_pool_frame(scores_csv, families_yaml, metrics,
                                            max_model_size=setting.get("max_model_size"),
                                            dropna=setting.get("dropna", False))
        pool = capability_pool(models, families, metrics, n_components, pca_components, imputation)
        include = list(setting.get("include_families", []))
        start = time.perf_counter()
        search = exact_family_search(pool, max_families=max_families, include_families=include,
                                     max_models=max(budgets))
        seconds = time.perf_counter() - start
        log.info("%s: %d models, %d families, %d combinations searched in %.2f s", name, len(models),
                 len(pool.families), search.n_enumerated, seconds)
        stats[name] = {"n_models": len(models), "n_families": len(pool.families),
                       "n_combinations": search.n_enumerated, "search_seconds": round(seconds, 3)}
        best = best_by_budget(search, budgets)
        frame = selections_frame(best, pool=name)
        frame.insert(1, "n_combinations", search.n_enumerated)
        rows.append(frame)
        if compare_heuristic:
            heuristic += heuristic_rows(name, pool, best, include, max_families)
    table = pd.concat(rows, ignore_index=True)
    write_csv(table, table_csv)
    write_csv(pd.DataFrame(heuristic, columns=HEURISTIC_COLUMNS), heuristic_csv)
    write_json(provenance({"scores": scores_csv, "families": families_yaml}, settings=settings,
                          metrics=list(metrics), n_components=n_components, pca_components=pca_components,
                          imputation=imputation, max_families=max_families, budgets=list(budgets),
                          pools=stats), provenance_json)
    return table


def _figure_fits(frame: pd.DataFrame, spec: dict, targets: list[dict], selections: Sequence[Selection],
                 figure_budgets: Sequence[int]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Predictions and law curves of the subsets drawn in Fig 7b / C.17 (V-optimal) and C.18
    (the first random sample)."""
    preds, curves = [], []
    for sel in selections:
        if sel.budget not in figure_budgets or sel.rank != 0:
            continue
        fits = subset_fits(frame, spec, targets, sel.models)
        for table, out in ((subset_predictions(fits), preds), (subset_curves(fits), curves)):
            table.insert(0, "method", sel.method)
            table.insert(1, "budget", sel.budget)
            table.insert(2, "families", ";".join(sel.families))
            out.append(table)
    return pd.concat(preds, ignore_index=True), pd.concat(curves, ignore_index=True)


def write_heldout_evaluation(scores_csv, downstream_csv, families_yaml, *, budgets: Sequence[int],
                               selection_metrics: Sequence[str], fit_metrics: Sequence[str],
                               targets: Sequence[str | dict], law: dict[str, Any], cutoff_flops: float,
                               selection_components: int, fit_components: int, pca_components: int,
                               imputation: dict | None, max_families: int, n_random: int,
                               random_window: int, random_seed: int, figure_budgets: Sequence[int],
                               reference_family: str, curve_csv, details_csv, predictions_csv,
                               curves_csv, provenance_json, n_jobs: int = 1) -> pd.DataFrame:
    """The held-out evaluation: the Fig 7a curve, the per-subset test MSEs,
    and the predictions and law curves of the fits drawn in Fig 7b / C.17 (V-optimal) and C.18
    (random)."""
    spec = heldout_spec(fit_metrics, law, cutoff_flops, fit_components, imputation, reference_family)
    resolved = heldout_targets(targets)
    frame, families = evaluation_frame(scores_csv, downstream_csv, families_yaml, selection_metrics,
                                       [t["column"] for t in resolved])
    # Laws fitted on the smallest budgets' 4 models are degenerate by design (5 parameters): counted
    # and said once (the status column of curve_details.csv marks each), not one warning per fit.
    with tallied_warnings("degenerate", "obsscale.laws.law", "obsscale.laws.fit") as (tally, _):
        curve, details, selections = selection_curve(
            frame, families, budgets, selection_metrics, spec, resolved, selection_components=selection_components,
            pca_components=pca_components, imputation=imputation, max_families=max_families, n_random=n_random,
            random_window=random_window, random_seed=random_seed, n_jobs=n_jobs)
        preds, curves = _figure_fits(frame, spec, resolved, selections, figure_budgets)
    n_degenerate = int((details["status"] == "degenerate").sum()) if "status" in details else tally.count
    if n_degenerate:
        log.warning("selection evaluation: %d of %d law fits degenerate (parameters not identifiable: the "
                    "smallest subsets have about as many models as the law has parameters; expected); "
                    "see the status column of %s", n_degenerate, len(details), details_csv)
    write_csv(curve, curve_csv)
    write_csv(details, details_csv)
    write_csv(preds, predictions_csv)
    write_csv(curves, curves_csv)
    write_json(provenance({"scores": scores_csv, "downstream": downstream_csv, "families": families_yaml},
                          budgets=list(budgets), selection_metrics=list(selection_metrics),
                          fit_metrics=list(fit_metrics), targets=resolved, law=law,
                          cutoff_flops=cutoff_flops, n_random=n_random, random_window=random_window,
                          random_seed=random_seed), provenance_json)
    return curve


def write_selection(scores_csv, families_yaml, guide: dict[str, Any], outputs: dict[str, str],
                    heldout: dict[str, Any] | None = None, downstream_csv=None, n_jobs: int = 1) -> None:
    """Stage function of rule `selection`: Table 1 (`write_guide_tables` with the settings of
    `guide`) and, with `heldout` settings, the held-out evaluation (`write_heldout_evaluation`) and
    its figures (`selection_figures`).  `outputs` holds the paths: table, heuristic,
    table_provenance; curve, details, predictions, curves, provenance and `<stem>__<ext>` of each
    figure of `outputs.SELECTION_FIGURES` for the evaluation."""
    write_guide_tables(scores_csv, families_yaml, **guide, table_csv=outputs["table"],
                       heuristic_csv=outputs["heuristic"], provenance_json=outputs["table_provenance"])
    if not heldout:
        return
    write_heldout_evaluation(scores_csv, downstream_csv, families_yaml, **heldout, curve_csv=outputs["curve"],
                             details_csv=outputs["details"], predictions_csv=outputs["predictions"],
                             curves_csv=outputs["curves"], provenance_json=outputs["provenance"], n_jobs=n_jobs)
    from obsscale.figures.style import group_figure_outputs  # matplotlib only once the tables are written

    figures = group_figure_outputs({k: v for k, v in outputs.items() if "__" in k})
    selection_figures(outputs["curve"], outputs["predictions"], outputs["curves"], figures)


# The subset-fit figures of the held-out evaluation: figure stem -> (selection method, title).
SUBSET_FIGURES = {
    "fig7b_selected_fits": ("v-optimal", "Fits on V-optimally selected models"),
    "figC18_random_fits": ("random", "Fits on randomly selected models"),
}


def selection_figures(curve_csv, predictions_csv, curves_csv, figures: dict[str, dict[str, str]]) -> None:
    """Fig 7a (the selection curve), Fig 7b and Fig C.18 (the fits on the V-optimal and on random
    subsets).  `figures` maps each stem of
    `outputs.SELECTION_FIGURES` to its files {"png", "csv", optionally "pdf"}."""
    paths = figures["fig7a_selection_curve"]
    figure_selection_curve(curve_csv, paths["png"], paths.get("pdf"), paths["csv"])
    for stem, (method, title) in SUBSET_FIGURES.items():
        paths = figures[stem]
        figure_subset_fits(predictions_csv, curves_csv, method, paths["png"], paths.get("pdf"), paths["csv"], title)


def figure_selection_curve(curve_csv, png, pdf, csv) -> None:
    """Fig 7a: held-out error of each selection method against the budget."""
    from obsscale.figures.selection import plot_selection_curve  # matplotlib only for figure jobs

    plot_selection_curve(pd.read_csv(curve_csv), png, pdf, csv)


def figure_subset_fits(predictions_csv, curves_csv, method: str, png, pdf, csv, title: str) -> None:
    """Fig 7b (method v-optimal) and Fig C.18 (random): the fits on each method's subsets."""
    from obsscale.figures.selection import plot_subset_fits  # matplotlib only for figure jobs

    preds = pd.read_csv(predictions_csv)
    preds = preds[preds["method"] == method]
    if preds.empty:
        raise ValueError(f"{predictions_csv}: no predictions of method '{method}'")
    curves = pd.read_csv(curves_csv)
    plot_subset_fits(preds, curves[curves["method"] == method], png, pdf, csv, title)
