"""Stage functions of workflow/rules/selection.smk: the V-optimal guide tables (Table 1), the
held-out evaluation of selected subsets (Fig 7a, 7b, C.17, C.18) and its figures."""

from __future__ import annotations

import logging

import time
from typing import Any, Sequence

import pandas as pd

from obsscale.core.io import provenance, tallied_warnings, write_csv, write_json
from obsscale.selection.evaluate import (
    evaluation_frame,
    make_law_factory,
    plot_selection_curve,
    plot_subset_fits,
    selection_curve,
    subset_test_mse,
)
from obsscale.selection.search import (
    best_by_budget,
    capability_pool,
    exact_family_search,
    greedy_exchange_search,
    guide_pool_frame,
    selections_frame,
)

log = logging.getLogger(__name__)


def write_guide_tables(scores_csv, families_yaml, settings: dict[str, dict], metrics: Sequence[str],
                       n_components: int, pca_components: int, imputation: dict | None,
                       max_families: int, budgets: Sequence[int], table_csv, heuristic_csv,
                       provenance_json, compare_heuristic: bool = True) -> pd.DataFrame:
    """Stage function of rule `selection_guide`: for each guide setting (a named candidate pool
    with its always-included families) run the exact family search and write the V-optimal choice
    per budget (paper Table 1); beside it, the greedy/exchange heuristic's objective on the same
    pools, to show how close it gets where the exact search can still run."""
    from obsscale.core.io import provenance, write_csv, write_json

    rows, heuristic_rows, stats = [], [], {}
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
            for sel in best:
                fam = greedy_exchange_search(pool, sel.budget, include, max_groups=max_families)
                mod = greedy_exchange_search(pool, sel.budget, include, unit="model")
                heuristic_rows.append({
                    "pool": name, "budget": sel.budget, "exact_objective": sel.objective,
                    "exact_families": ";".join(sel.families),
                    "greedy_family_objective": fam.objective,
                    "greedy_family_families": ";".join(fam.families),
                    # relative shortfall; differences below 1e-12 are rounding of summation order
                    "greedy_family_gap": gap if abs(gap := fam.objective / sel.objective - 1.0) > 1e-12 else 0.0,
                    "greedy_family_same_set": set(fam.families) == set(sel.families),
                    "greedy_model_objective": mod.objective,
                    "greedy_model_n_models": mod.n_models,
                    "greedy_model_models": ";".join(mod.models),
                })
    table = pd.concat(rows, ignore_index=True)
    write_csv(table, table_csv)
    write_csv(pd.DataFrame(heuristic_rows, columns=[
        "pool", "budget", "exact_objective", "exact_families", "greedy_family_objective",
        "greedy_family_families", "greedy_family_gap", "greedy_family_same_set",
        "greedy_model_objective", "greedy_model_n_models", "greedy_model_models"]), heuristic_csv)
    write_json(provenance({"scores": scores_csv, "families": families_yaml}, settings=settings,
                          metrics=list(metrics), n_components=n_components, pca_components=pca_components,
                          imputation=imputation, max_families=max_families, budgets=list(budgets),
                          pools=stats), provenance_json)
    return table


def write_selection_evaluation(scores_csv, downstream_csv, families_yaml, *, budgets: Sequence[int],
                               selection_metrics: Sequence[str], fit_metrics: Sequence[str],
                               targets: Sequence[str], law: dict[str, Any], cutoff_flops: float,
                               selection_components: int, fit_components: int, pca_components: int,
                               imputation: dict | None, max_families: int, n_random: int,
                               random_window: int, random_seed: int, figure_budgets: Sequence[int],
                               reference_family: str, curve_csv, details_csv, predictions_csv,
                               provenance_json, n_jobs: int = 1) -> pd.DataFrame:
    """Stage function of rule `selection_evaluation`: the Fig 7a curve, the per-subset test MSEs,
    and the predictions of the fits drawn in Fig 7b / C.17 (V-optimal) and C.18 (random)."""
    factory = make_law_factory(law)
    frame, families = evaluation_frame(scores_csv, downstream_csv, families_yaml, selection_metrics, targets)
    # Laws fitted on the smallest budgets' 4 models are degenerate by design (5 parameters): counted
    # and said once (the status column of curve_details.csv marks each), not one warning per fit.
    with tallied_warnings("degenerate", "obsscale.laws.law") as (tally,):
        curve, details, selections = selection_curve(
            frame, families, budgets, selection_metrics, fit_metrics, targets, factory,
            cutoff_flops=cutoff_flops, selection_components=selection_components,
            fit_components=fit_components, pca_components=pca_components, imputation=imputation,
            max_families=max_families, n_random=n_random, random_window=random_window, random_seed=random_seed,
            n_jobs=n_jobs)
        preds = []
        for sel in selections:
            if sel.budget in figure_budgets and sel.rank == 0:
                _, p = subset_test_mse(frame, sel.models, targets=targets, fit_metrics=fit_metrics,
                                       law_factory=factory, cutoff_flops=cutoff_flops,
                                       n_components=fit_components, imputation=imputation,
                                       return_predictions=True, reference_family=reference_family)
                p.insert(0, "method", sel.method)
                p.insert(1, "budget", sel.budget)
                p.insert(2, "families", ";".join(sel.families))
                preds.append(p)
    n_degenerate = int((details["status"] == "degenerate").sum()) if "status" in details else tally.count
    if n_degenerate:
        log.warning("selection evaluation: %d of %d law fits degenerate (parameters not identifiable: the "
                    "smallest subsets have about as many models as the law has parameters; expected); "
                    "see the status column of %s", n_degenerate, len(details), details_csv)
    write_csv(curve, curve_csv)
    write_csv(details, details_csv)
    write_csv(pd.concat(preds, ignore_index=True), predictions_csv)
    write_json(provenance({"scores": scores_csv, "downstream": downstream_csv, "families": families_yaml},
                          budgets=list(budgets), selection_metrics=list(selection_metrics),
                          fit_metrics=list(fit_metrics), targets=list(targets), law=law,
                          cutoff_flops=cutoff_flops, n_random=n_random, random_window=random_window,
                          random_seed=random_seed), provenance_json)
    return curve


def figure_selection_curve(curve_csv, png, pdf, csv) -> None:
    """Stage function of rule `fig7a_selection_curve`."""
    plot_selection_curve(pd.read_csv(curve_csv), png, pdf, csv)


def figure_subset_fits(predictions_csv, method: str, png, pdf, csv, title: str) -> None:
    """Stage function of rules `fig7b_selected_fits` (method v-optimal) and `figC18_random_fits`."""
    preds = pd.read_csv(predictions_csv)
    preds = preds[preds["method"] == method]
    if preds.empty:
        raise ValueError(f"{predictions_csv}: no predictions of method '{method}'")
    plot_subset_fits(preds, png, pdf, csv, title)
