"""Benchmark: the paper's guide search (Table 1) — vectorised exact family search against the
straightforward per-combination implementation, side by side in one run.

Pool: the 77 default models with PC scores from imputation + PCA fitted on them (8 metrics, K = 3),
Llama-2 always included, every combination of up to 10 families: 431,909 combinations.

Both rows of the table time the search alone (every combination's objective); the whole guide
(plus the best combination per budget and the random baseline) is printed below them.

The straightforward implementation (`exact_family_search(method="brute_force")`, the tests'
oracle) loops over combinations, gathers the models of the combination's families, forms S_MᵀS_M
and inverts it with `numpy.linalg.inv`.  By default it is timed on an evenly spaced sample of the
combinations and its full run time is EXTRAPOLATED from that sample (said so in the output); with
`--full` it runs on all of them and the selections of both paths are compared budget by budget.
Either way the sampled objectives are checked against the fast path's.

    PYTHONPATH=src python bench/selection.py [--sample 20000] [--full] [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

from obsscale.capability.scores import BASE_METRICS, load_families, read_score_table, select_models
from obsscale.selection.greedy import greedy_exchange_search
from obsscale.selection.objective import v_optimality
from obsscale.selection.pool import capability_pool
from obsscale.selection.search import best_by_budget, exact_family_search, random_by_budget

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUDGETS = [4, 8, 12, 16, 20, 24, 28, 32, 36]
IMPUTATION = {"n_components": 1, "max_iter": 1000, "tol": 1e-6}


def guide_pool(max_model_size=None):
    fams = load_families(os.path.join(ROOT, "resources/obsscaling/families.yaml"))
    table = read_score_table(os.path.join(ROOT, "resources/obsscaling/base_llm_benchmark_eval.csv"),
                             list(BASE_METRICS), fams)
    models = select_models(table, fams)
    if max_model_size is not None:
        models = models[models["Model Size (B)"] <= max_model_size].reset_index(drop=True)
    return capability_pool(models, fams, BASE_METRICS, n_components=3, pca_components=5,
                           imputation=IMPUTATION)


def fast_guide(pool, include):
    search = exact_family_search(pool, max_families=10, include_families=include, max_models=max(BUDGETS))
    return search, best_by_budget(search, BUDGETS), random_by_budget(search, BUDGETS[1:])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sample", type=int, default=20000, help="combinations timed for the per-combination path")
    ap.add_argument("--full", action="store_true", help="run the per-combination path on every combination")
    ap.add_argument("--repeat", type=int, default=5, help="timed repeats of the fast search (best is reported)")
    ap.add_argument("--sub7b", action="store_true", help="also time the sub-7B guide pool (89,845 combinations)")
    args = ap.parse_args(argv)

    print(f"python {sys.version.split()[0]}, numpy {np.__version__}, {os.cpu_count()} CPU(s) visible")
    settings = [("all 77 models", None)] + ([("sub-7B", 7)] if args.sub7b else [])
    for label, max_size in settings:
        pool = guide_pool(max_size)
        include = ["Llama-2"]
        # warm-up, then best of `repeat`: the whole guide (enumeration, pruning, objective, budgets,
        # random baseline)
        fast_guide(pool, include)
        times, guide_times = [], []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            search = exact_family_search(pool, max_families=10, include_families=include, max_models=max(BUDGETS))
            times.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            search, best, rand = fast_guide(pool, include)
            guide_times.append(time.perf_counter() - t0)
        t_fast = min(times)
        n_all = search.n_enumerated
        print(f"\n== guide search, pool {label}: {len(pool.group)} models, {len(pool.families)} families, "
              f"Llama-2 included, {n_all:,} combinations ({search.objective.size:,} within {max(BUDGETS)} models)")

        # the per-combination path on an evenly spaced sample of ALL enumerated combinations
        # (the fast path prunes those over budget before any algebra; the straightforward one
        # scores every combination, as the reference does)
        full_search = exact_family_search(pool, max_families=10, include_families=include)
        n_sample = min(args.sample, n_all)
        idx = np.unique(np.linspace(0, n_all - 1, n_sample).round().astype(int))
        t0 = time.perf_counter()
        sampled = np.array([
            v_optimality(pool.scores, pool.scores[np.isin(pool.group, full_search.family_indices_of(i))])
            for i in idx
        ])
        t_sample = time.perf_counter() - t0
        per_combo = t_sample / len(idx)
        fast_vals = full_search.objective[idx]
        finite = np.isfinite(sampled)
        same_inf = bool(np.array_equal(finite, np.isfinite(fast_vals)))
        max_rel = float(np.max(np.abs(fast_vals[finite] - sampled[finite]) / np.abs(sampled[finite])))

        if args.full:
            t0 = time.perf_counter()
            # no pruning: the straightforward implementation scores every combination
            brute = exact_family_search(pool, max_families=10, include_families=include,
                                        method="brute_force")
            t_brute = time.perf_counter() - t0
            how = "measured on all combinations"
        else:
            brute = None
            t_brute = per_combo * n_all
            how = f"EXTRAPOLATED from {len(idx):,} evenly spaced combinations ({t_sample:.2f} s)"

        print(f"{'path':<34}{'time (s)':>12}{'combinations/s':>18}")
        print(f"{'vectorised (fast)':<34}{t_fast:>12.3f}{n_all / t_fast:>18,.0f}")
        print(f"{'per-combination (brute force)':<34}{t_brute:>12.2f}{n_all / t_brute:>18,.0f}   <- {how}")
        print(f"speed-up: {t_brute / t_fast:,.0f}x   (fast: best of {args.repeat}; times {np.round(times, 3).tolist()})")
        print(f"whole guide with the fast search (search + best per budget + random baseline): "
              f"{min(guide_times):.3f} s (best of {args.repeat})")
        print(f"sampled objectives: fast vs per-combination max relative difference {max_rel:.1e}, "
              f"infeasible sets agree: {same_inf}")
        if brute is not None:
            same_best = [b.families for b in best] == [b.families for b in best_by_budget(brute, BUDGETS)]
            same_rand = [r.families for r in rand] == [r.families for r in random_by_budget(brute, BUDGETS[1:])]
            print(f"identical selections (all budgets, full brute force): V-optimal {same_best}, random {same_rand}")
        else:
            # the winners and runners-up of every budget re-scored by the per-combination formula
            ok = True
            for b in best:
                cand = np.flatnonzero(search.n_models <= b.budget)
                top = cand[np.argsort(-search.objective[cand], kind="stable")[:50]]
                exact = [v_optimality(pool.scores, pool.scores[np.isin(pool.group, search.family_indices_of(i))])
                         for i in top]
                ok &= top[int(np.argmax(exact))] == b.combination_index
            print(f"identical selections (each budget's top 50 re-scored per combination): {bool(ok)}  "
                  "(run with --full for the complete comparison)")
        # the greedy/exchange heuristic (for pools too large to enumerate) against the exact optimum
        t0 = time.perf_counter()
        greedy = [greedy_exchange_search(pool, b.budget, include, max_groups=10) for b in best]
        t_greedy = time.perf_counter() - t0
        print(f"greedy/exchange over families, all {len(best)} budgets: {t_greedy:.2f} s")
        print("budget  n_models  objective  greedy objective  gap     families (exact)")
        for b, g in zip(best, greedy):
            gap = g.objective / b.objective - 1
            gap = 0.0 if abs(gap) < 1e-12 else gap  # rounding of two summation orders
            print(f"{b.budget:>6}  {b.n_models:>8}  {b.objective:>9.2f}  {g.objective:>16.2f}  {gap:>6.1%}  "
                  f"{', '.join(b.families)}")


if __name__ == "__main__":
    main()
