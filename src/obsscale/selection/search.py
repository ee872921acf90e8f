"""Exact search for the V-optimal model subset (paper Sec 5, spec §7.5).

Whole families are chosen or left out, because a researcher downloads and evaluates a family's
checkpoints together.  The exact search enumerates every combination of 1…`max_families` families
(optionally with some families always included) in `itertools.combinations` order, sizes ascending;
per budget B the best combination with at most B models wins, ties going to the earliest
combination (the reference's stable sort).  The random baseline shuffles the combinations whose
model count lies in [max(B − 2, 3), B] with Python's `random` seeded 0 (reseeded per budget) and
takes the first few.

Speed: the objective only depends on the K × K Gram matrix S_MᵀS_M, which is the sum of the
per-family blocks G_f = S_fᵀS_f.  The search therefore precomputes the blocks once, builds the
combinations as integer arrays, sums the blocks with a few vectorised gathers, drops combinations
larger than the largest budget before any algebra, and evaluates Tr(A G⁻¹) for all of them at once
(closed-form adjugate for K = 3, stacked `numpy.linalg.solve` otherwise).  Combinations of r
families are grown from those of r − 1 (in `itertools.combinations` order), so block sums and model
counts are incremental and a prefix over the budget is pruned with all its extensions.  `method="brute_force"`
is the plain per-combination loop with one `numpy.linalg.inv` each, kept as the oracle.

The objective is `obsscale.selection.objective`; candidate pools are `obsscale.selection.pool`; for
pools too large to enumerate, `obsscale.selection.greedy`.
"""

from __future__ import annotations

import logging
import math
import random
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from obsscale.selection.objective import batched_v_optimality, v_optimality
from obsscale.selection.pool import FamilyPool

log = logging.getLogger(__name__)

# Objectives this close (relatively) to the best one count as ties and go to the earliest
# combination, so that rounding differences between summation orders cannot change a selection.
TIE_RTOL = 1e-10

# The reference refuses more than 1e7 combinations; beyond that use the greedy/exchange search.
MAX_EXACT_COMBINATIONS = 10_000_000


# --------------------------------------------------------------------------------------------------
# Enumeration


def count_combinations(n_other: int, max_families: int, n_included: int = 0) -> int:
    return sum(math.comb(n_other, r) for r in range(1, max_families - n_included + 1))


# --------------------------------------------------------------------------------------------------
# Exact family-level search


@dataclass
class FamilySearch:
    """Every enumerated combination that fits the largest budget, in enumeration order.

    `combinations[i]` lists the pool family indices of the searched (non-included) families,
    padded with −1; `included` are added to every combination.
    """

    pool: FamilyPool
    included: tuple[int, ...]
    combinations: np.ndarray
    n_models: np.ndarray
    objective: np.ndarray
    n_enumerated: int
    max_models: int | None
    method: str

    def families_of(self, i: int) -> tuple[str, ...]:
        row = [int(j) for j in self.combinations[i] if j >= 0]
        return tuple(self.pool.families[j] for j in (*row, *self.included))

    def family_indices_of(self, i: int) -> tuple[int, ...]:
        return tuple(int(j) for j in self.combinations[i] if j >= 0) + self.included


@dataclass(frozen=True)
class Selection:
    """One chosen set of families (or models) for a budget."""

    budget: int
    method: str
    families: tuple[str, ...]
    models: tuple[str, ...]
    n_models: int
    objective: float
    rank: int = 0
    combination_index: int = -1


def _combination_levels(sizes: np.ndarray, grams: np.ndarray | None, base_count: int,
                        base_gram: np.ndarray, max_size: int, max_models: int | None):
    """Yield (r, positions, counts, grams) for r = 1…max_size: every r-subset of range(n) in
    `itertools.combinations` order whose model count fits `max_models`, with its count and (when
    `grams` is given) its summed Gram block, both including the base (always-included) part.

    Level r is built from level r − 1: each subset is extended by every position after its last
    one, in ascending order, which reproduces the lexicographic order; counts and Gram sums are
    the parent's plus the new family's (one gather per level, not per family slot).  Because every
    family has at least one model, a subset over the budget has no child within it, so it is
    dropped before extension (branch pruning)."""
    n = len(sizes)
    positions = np.arange(n, dtype=np.int16)[:, None]
    counts = sizes.astype(np.int64) + base_count
    g = grams + base_gram if grams is not None else None
    for r in range(1, max_size + 1):
        if max_models is not None:
            keep = counts <= max_models
            if not keep.all():
                positions, counts = positions[keep], counts[keep]
                g = g[keep] if g is not None else None
        if positions.shape[0] == 0:
            return
        yield r, positions, counts, g
        if r == max_size:
            return
        last = positions[:, -1].astype(np.int64)
        n_child = n - 1 - last
        parent = np.repeat(np.arange(positions.shape[0]), n_child)
        # child j of a parent ending at `last` adds position last + 1 + j
        offsets = np.arange(parent.shape[0]) - np.repeat(np.cumsum(n_child) - n_child, n_child)
        child = (np.repeat(last + 1, n_child) + offsets).astype(np.int16)
        positions = np.hstack([positions[parent], child[:, None]])
        counts = counts[parent] + sizes[child]
        if g is not None:
            g = g[parent] + grams[child]


def exact_family_search(pool: FamilyPool, max_families: int = 10,
                        include_families: Sequence[str] = (), max_models: int | None = None,
                        method: str = "fast") -> FamilySearch:
    """Score every combination of 1…(max_families − #included) families plus the included ones.

    Combinations with more than `max_models` models are dropped (they fit no budget).  `method`
    "fast" is the vectorised search, "brute_force" the per-combination loop (oracle).
    """
    if method not in ("fast", "brute_force"):
        raise ValueError(f"unknown method {method!r}; expected 'fast' or 'brute_force'")
    included = tuple(pool.family_index(include_families))
    if len(set(included)) != len(included):
        raise ValueError(f"include_families repeats a family: {list(include_families)}")
    others = np.array([i for i in range(len(pool.families)) if i not in included], dtype=np.int16)
    max_other = max_families - len(included)
    if max_other < 1:
        raise ValueError(f"max_families={max_families} leaves no room beside {len(included)} included families")
    total = count_combinations(len(others), max_families, len(included))
    if total > MAX_EXACT_COMBINATIONS:
        raise ValueError(
            f"{total} family combinations exceed the exact-search limit of {MAX_EXACT_COMBINATIONS}; "
            "use greedy_exchange_search for this pool")

    sizes = pool.family_sizes()
    grams = pool.family_grams()
    total_gram = pool.scores.T @ pool.scores
    inc_count = int(sizes[list(included)].sum()) if included else 0
    inc_gram = grams[list(included)].sum(axis=0) if included else np.zeros_like(total_gram)
    width = max(min(max_other, len(others)), 1)

    kept_combos, kept_counts, kept_obj = [], [], []
    levels = _combination_levels(sizes[others], grams[others] if method == "fast" else None,
                                 inc_count, inc_gram, min(max_other, len(others)), max_models)
    for r, positions, counts, g in levels:
        combos = others[positions]
        if method == "fast":
            obj = batched_v_optimality(total_gram, g, counts)
        else:
            obj = np.array([
                v_optimality(pool.scores, pool.scores[np.isin(pool.group, [*row, *included])])
                for row in combos.tolist()
            ], dtype=float)
        padded = np.full((combos.shape[0], width), -1, dtype=np.int16)
        padded[:, :r] = combos
        kept_combos.append(padded)
        kept_counts.append(counts)
        kept_obj.append(obj)

    combinations = np.vstack(kept_combos) if kept_combos else np.zeros((0, width), dtype=np.int16)
    n_models = np.concatenate(kept_counts) if kept_counts else np.zeros(0, dtype=np.int64)
    objective = np.concatenate(kept_obj) if kept_obj else np.zeros(0)
    log.info("%s search: %d combinations enumerated, %d within %s models", method, total,
             combinations.shape[0], max_models)
    return FamilySearch(pool=pool, included=included, combinations=combinations,
                        n_models=n_models.astype(np.int64), objective=objective,
                        n_enumerated=total, max_models=max_models, method=method)


def _first_best(objective: np.ndarray, candidates: np.ndarray) -> int:
    """Index (into the search) of the best candidate; near-ties go to the earliest one."""
    vals = objective[candidates]
    best = vals.max()
    if np.isfinite(best):
        near = vals >= best - TIE_RTOL * abs(best)
    else:
        near = vals == best
    return int(candidates[np.flatnonzero(near)[0]])


def _selection(search: FamilySearch, i: int, budget: int, method: str, rank: int = 0) -> Selection:
    fams = search.family_indices_of(i)
    return Selection(budget=budget, method=method, families=search.families_of(i),
                     models=tuple(search.pool.models_of(fams)), n_models=int(search.n_models[i]),
                     objective=float(search.objective[i]), rank=rank, combination_index=i)


def best_by_budget(search: FamilySearch, budgets: Sequence[int]) -> list[Selection]:
    """Per budget B, the V-optimal combination among those with at most B models."""
    out = []
    for budget in budgets:
        if search.max_models is not None and budget > search.max_models:
            raise ValueError(f"budget {budget} exceeds the search's max_models={search.max_models}")
        candidates = np.flatnonzero(search.n_models <= budget)
        if candidates.size == 0:
            raise ValueError(f"no family combination has at most {budget} models")
        i = _first_best(search.objective, candidates)
        if not np.isfinite(search.objective[i]):
            raise ValueError(f"no feasible combination (≥ {search.pool.n_components} models) within budget {budget}")
        out.append(_selection(search, i, budget, "v-optimal"))
    return out


def random_by_budget(search: FamilySearch, budgets: Sequence[int], n_samples: int = 5,
                     window: int = 2, seed: int = 0, min_models: int = 3) -> list[Selection]:
    """The paper's random baseline: per budget, shuffle (Python `random`, reseeded per budget) the
    combinations with a model count in [max(B − window, min_models), B], in enumeration order,
    and take the first `n_samples`."""
    out = []
    for budget in budgets:
        lo = max(budget - window, min_models)
        candidates = np.flatnonzero((search.n_models <= budget) & (search.n_models >= lo)).tolist()
        if len(candidates) < n_samples:
            log.warning("budget %d: only %d combinations with %d…%d models; %d random samples requested",
                        budget, len(candidates), lo, budget, n_samples)
        # shuffle permutes positions only, so shuffling the indices equals shuffling the results
        random.Random(seed).shuffle(candidates)
        for rank, i in enumerate(candidates[:n_samples]):
            out.append(_selection(search, i, budget, "random", rank=rank))
    return out


# --------------------------------------------------------------------------------------------------
# Tables


def selections_frame(selections: Iterable[Selection], **columns) -> pd.DataFrame:
    """One row per selection: budget, method, rank, families (';'-joined), n_models, objective."""
    rows = []
    for s in selections:
        rows.append({
            **columns,
            "budget": s.budget,
            "method": s.method,
            "rank": s.rank,
            "families": ";".join(s.families),
            "n_families": len(s.families),
            "n_models": s.n_models,
            "objective": s.objective,
            "models": ";".join(s.models),
        })
    return pd.DataFrame(rows)
