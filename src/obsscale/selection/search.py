"""Model-subset selection by V-optimality (paper Sec 5, spec §7.5).

Given the capability-space scores S (n × K, the first K PC scores of every candidate model), a set M
of models to evaluate is scored by the V-optimality criterion of optimal experimental design,

    Tr(SᵀS (S_MᵀS_M)⁻¹),

the summed prediction variance, over all candidates, of a least-squares fit on the PC scores of M
alone (up to the noise variance).  Smaller is better; like the paper we *maximise* its negative and
give sets with fewer than K models (or a singular S_MᵀS_M) the value −∞.

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

For pools too large to enumerate, `greedy_exchange_search` adds the best group while the budget
allows and then improves the set by single swaps, additions and removals until none helps.
"""

from __future__ import annotations

import itertools
import logging
import math
import random
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

FAMILY_COLUMN = "Model Family"
MODEL_COLUMN = "Model"

# det(G) / prod(diag G) lies in [0, 1] for a positive semi-definite G (Hadamard's inequality) and
# does not depend on the scale of the scores; below this G is treated as singular (objective −∞).
SINGULAR_RTOL = 1e-12

# Objectives this close (relatively) to the best one count as ties and go to the earliest
# combination, so that rounding differences between summation orders cannot change a selection.
TIE_RTOL = 1e-10

# The reference refuses more than 1e7 combinations; beyond that use the greedy/exchange search.
MAX_EXACT_COMBINATIONS = 10_000_000

# Bound on the one-for-two swaps tried per exchange round of the greedy search.
MAX_PAIR_SWAPS = 50_000


# --------------------------------------------------------------------------------------------------
# Pool of candidates


@dataclass(frozen=True)
class FamilyPool:
    """Candidate models grouped into families: the input of every search.

    `scores` is n × K (the PC scores used by the objective); `group` gives each row's family as an
    index into `families`, which is the enumeration order of the search.
    """

    families: tuple[str, ...]
    scores: np.ndarray
    group: np.ndarray
    models: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        scores = np.asarray(self.scores, dtype=float)
        group = np.asarray(self.group, dtype=np.int64)
        if scores.ndim != 2:
            raise ValueError(f"scores must be a 2-D array (models × PCs), got shape {scores.shape}")
        if group.shape != (scores.shape[0],):
            raise ValueError(f"group has shape {group.shape}, expected ({scores.shape[0]},)")
        if not np.all(np.isfinite(scores)):
            bad = int(np.flatnonzero(~np.all(np.isfinite(scores), axis=1))[0])
            name = self.models[bad] if self.models else f"row {bad}"
            raise ValueError(f"scores of {name} are not finite: {scores[bad]}")
        if len(group) and (group.min() < 0 or group.max() >= len(self.families)):
            raise ValueError("group indices must lie in [0, len(families))")
        if self.models and len(self.models) != scores.shape[0]:
            raise ValueError(f"{len(self.models)} model names for {scores.shape[0]} score rows")
        object.__setattr__(self, "scores", scores)
        object.__setattr__(self, "group", group)

    @classmethod
    def from_frame(cls, df: pd.DataFrame, components: Sequence[str],
                   family_order: Sequence[str] | None = None) -> "FamilyPool":
        """Build a pool from a frame with `Model`, `Model Family` and the PC-score columns.

        Families follow `family_order` (families absent from the frame are skipped; rows of
        families not in it are an error), else their order of first appearance.
        """
        missing = [c for c in (FAMILY_COLUMN, *components) if c not in df.columns]
        if missing:
            raise KeyError(f"score frame lacks column(s) {missing}")
        present = list(dict.fromkeys(df[FAMILY_COLUMN]))
        if family_order is None:
            families = present
        else:
            unknown = [f for f in present if f not in family_order]
            if unknown:
                raise ValueError(f"families {unknown} are not in the family order")
            families = [f for f in family_order if f in set(present)]
        index = {f: i for i, f in enumerate(families)}
        models = tuple(df[MODEL_COLUMN].astype(str)) if MODEL_COLUMN in df.columns else ()
        return cls(
            families=tuple(families),
            scores=df[list(components)].to_numpy(dtype=float),
            group=np.array([index[f] for f in df[FAMILY_COLUMN]], dtype=np.int64),
            models=models,
        )

    @property
    def n_components(self) -> int:
        return self.scores.shape[1]

    def family_sizes(self) -> np.ndarray:
        return np.bincount(self.group, minlength=len(self.families))

    def family_grams(self) -> np.ndarray:
        """G_f = S_fᵀS_f for every family f (shape families × K × K)."""
        k = self.n_components
        grams = np.zeros((len(self.families), k, k))
        np.add.at(grams, self.group, self.scores[:, :, None] * self.scores[:, None, :])
        return grams

    def family_index(self, names: Iterable[str]) -> list[int]:
        out = []
        for name in names:
            if name not in self.families:
                raise KeyError(f"family {name!r} is not in the pool; pool families: {list(self.families)}")
            out.append(self.families.index(name))
        return out

    def models_of(self, family_indices: Iterable[int]) -> list[str]:
        chosen = np.isin(self.group, list(family_indices))
        if not self.models:
            return [str(i) for i in np.flatnonzero(chosen)]
        return [m for m, c in zip(self.models, chosen) if c]


# --------------------------------------------------------------------------------------------------
# Objective


def _is_singular(det: np.ndarray, diag_prod: np.ndarray) -> np.ndarray:
    det = np.asarray(det, dtype=float)
    diag_prod = np.asarray(diag_prod, dtype=float)
    return ~(det > SINGULAR_RTOL * diag_prod) | ~(diag_prod > 0)


def v_optimality(scores_all: np.ndarray, scores_subset: np.ndarray) -> float:
    """−Tr(SᵀS (S_MᵀS_M)⁻¹) for one subset, by an explicit inverse (the reference formula).

    −∞ when the subset has fewer rows than PCs or its Gram matrix is singular.
    """
    scores_all = np.asarray(scores_all, dtype=float)
    scores_subset = np.asarray(scores_subset, dtype=float)
    k = scores_all.shape[1]
    if scores_subset.shape[0] < k:
        return -math.inf
    gram = scores_subset.T @ scores_subset
    if _is_singular(np.linalg.det(gram), np.prod(np.diag(gram))):
        return -math.inf
    return -float(np.trace(scores_all.T @ scores_all @ np.linalg.inv(gram)))


def batched_v_optimality(total_gram: np.ndarray, grams: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """−Tr(A G⁻¹) for a stack of Gram matrices G (m × K × K) against A = SᵀS (K × K).

    A and G are symmetric, so Tr(A G⁻¹) is the sum of the elementwise product of A and G⁻¹.  For
    K = 3 the inverse is the adjugate over the determinant in closed form; other K use a stacked
    solve.  Entries with count < K or a singular G get −∞.
    """
    grams = np.asarray(grams, dtype=float)
    k = total_gram.shape[0]
    out = np.full(grams.shape[0], -np.inf)
    if grams.shape[0] == 0:
        return out
    diag_prod = np.prod(np.diagonal(grams, axis1=1, axis2=2), axis=1)
    if k == 3:
        a, b, c = grams[:, 0, 0], grams[:, 0, 1], grams[:, 0, 2]
        d, e, f = grams[:, 1, 1], grams[:, 1, 2], grams[:, 2, 2]
        c00 = d * f - e * e
        c01 = c * e - b * f
        c02 = b * e - c * d
        c11 = a * f - c * c
        c12 = b * c - a * e
        c22 = a * d - b * b
        det = a * c00 + b * c01 + c * c02
        A = total_gram
        num = (A[0, 0] * c00 + A[1, 1] * c11 + A[2, 2] * c22
               + 2.0 * (A[0, 1] * c01 + A[0, 2] * c02 + A[1, 2] * c12))
        ok = (counts >= k) & ~_is_singular(det, diag_prod)
        out[ok] = -num[ok] / det[ok]
        return out
    det = np.linalg.det(grams)
    ok = (counts >= k) & ~_is_singular(det, diag_prod)
    if ok.any():
        rhs = np.broadcast_to(total_gram, (int(ok.sum()), k, k))
        sol = np.linalg.solve(grams[ok], rhs)
        out[ok] = -np.trace(sol, axis1=1, axis2=2)
    return out


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
# Heuristic for large pools


def greedy_exchange_search(pool: FamilyPool, budget: int, include_families: Sequence[str] = (),
                           max_groups: int | None = None, unit: str = "family",
                           multi_start: bool | None = None, max_rounds: int = 1000) -> Selection:
    """Greedy forward selection then best-improvement exchange, for pools too large to enumerate.

    `unit="family"` chooses whole families; `unit="model"` treats every model as its own group.
    Forward steps add the group with the best objective that keeps the model count within
    `budget` (and the group count within `max_groups`); until the set has K models the objective is
    −∞ everywhere, so those steps rank by log det of the ridge-regularised Gram matrix instead.
    The exchange phase then tries every single addition, removal, one-for-one and (for moderate
    pools) one-for-two swap and keeps the best improving move until none improves.  With
    `multi_start` (default for families) the exchange is also started from every single group that
    fits, and the best local optimum is returned.
    """
    if unit not in ("family", "model"):
        raise ValueError(f"unit must be 'family' or 'model', got {unit!r}")
    if unit == "model":
        labels = tuple(pool.models) if pool.models else tuple(str(i) for i in range(len(pool.group)))
        work = FamilyPool(families=labels, scores=pool.scores,
                          group=np.arange(pool.scores.shape[0]), models=pool.models)
        fixed = np.flatnonzero(np.isin(pool.group, pool.family_index(include_families))).tolist()
    else:
        work = pool
        fixed = pool.family_index(include_families)
    if multi_start is None:
        multi_start = unit == "family"
    k = work.n_components
    sizes = work.family_sizes()
    grams = work.family_grams()
    total_gram = work.scores.T @ work.scores
    limit = max_groups if max_groups is not None else len(work.families)
    ridge = 1e-6 * np.trace(total_gram) / k * np.eye(k)
    fixed_set = set(fixed)
    n_groups = len(work.families)
    # a zero block at index n_groups pads the ragged candidate sets into one index array
    grams_pad = np.concatenate([grams, np.zeros((1, k, k))])
    sizes_pad = np.concatenate([sizes, [0]])

    def score(sets: list[list[int]]) -> np.ndarray:
        width = max(1, max(len(s) for s in sets))
        idx = np.full((len(sets), width), n_groups, dtype=np.int64)
        for row, members in enumerate(sets):
            idx[row, :len(members)] = members
        counts = sizes_pad[idx].sum(axis=1)
        vals = batched_v_optimality(total_gram, grams_pad[idx].sum(axis=1), counts)
        lengths = np.array([len(m) for m in sets])
        # sets over the budget (or the group limit) are infeasible
        vals[(counts > budget) | (lengths > limit)] = -np.inf
        return vals

    def fits(s: list[int]) -> bool:
        return int(sizes[s].sum()) <= budget and len(s) <= limit

    def forward(current: list[int]) -> list[int]:
        while True:
            cands = [current + [j] for j in range(n_groups) if j not in current]
            cands = [c for c in cands if fits(c)]
            if not cands:
                return current
            vals = score(cands)
            if not np.isfinite(vals).any():
                g = np.array([grams[c].sum(axis=0) + ridge for c in cands])
                vals = np.linalg.slogdet(g)[1]
            best = int(np.argmax(vals))
            now = score([current])[0]
            if np.isfinite(now) and vals[best] <= now:
                return current
            current = cands[best]

    def exchange(current: list[int]) -> tuple[list[int], float]:
        now = float(score([current])[0])
        for _ in range(max_rounds):
            outside = [j for j in range(n_groups) if j not in current]
            removable = [j for j in current if j not in fixed_set]
            moves = [current + [j] for j in outside]
            moves += [[x for x in current if x != j] for j in removable]
            moves += [[x for x in current if x != j] + [o] for j in removable for o in outside]
            # one-for-two swaps let a large group give way to two small ones under a tight budget
            if len(removable) * len(outside) ** 2 <= 2 * MAX_PAIR_SWAPS:
                moves += [[x for x in current if x != j] + [o1, o2] for j in removable
                          for o1, o2 in itertools.combinations(outside, 2)]
            if not moves:
                break
            vals = score(moves)
            best = int(np.argmax(vals))
            if np.isfinite(now):
                improved = vals[best] > now + TIE_RTOL * abs(now)
            else:
                improved = bool(np.isfinite(vals[best]))
            if not improved:
                break
            current, now = moves[best], float(vals[best])
        return current, now

    if not fits(list(fixed)):
        raise ValueError(f"the always-included groups alone exceed budget {budget}")
    starts = [forward(list(fixed))]
    if multi_start:
        starts += [forward(list(fixed) + [j]) for j in range(n_groups)
                   if j not in fixed_set and fits(list(fixed) + [j])]
    best_set, best_val = list(fixed), -math.inf
    for start in starts:
        current, now = exchange(start)
        if now > best_val:
            best_set, best_val = current, now
    # searched groups in pool order, then the always-included ones (the exact search's order)
    order = sorted(j for j in best_set if j not in fixed_set) + [j for j in fixed if j in best_set]
    if unit == "model":
        fams = tuple(dict.fromkeys(pool.families[pool.group[i]] for i in sorted(order)))
        models = tuple(work.families[i] for i in sorted(order))
    else:
        fams = tuple(pool.families[i] for i in order)
        models = tuple(pool.models_of(order))
    return Selection(budget=budget, method=f"greedy-exchange-{unit}", families=fams, models=models,
                     n_models=int(sizes[order].sum()), objective=float(best_val))


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


# --------------------------------------------------------------------------------------------------
# Stage: the practical guide (paper Table 1)


def guide_pool_frame(scores_csv, families_yaml, metrics: Sequence[str], family_list: str = "eval_base",
                     max_model_size: float | None = None, dropna: bool = False):
    """The candidate models of one guide setting: the default model set, optionally only models of
    at most `max_model_size` billion parameters (missing sizes are left out, like the reference's
    cutoff split), optionally without rows that miss a metric."""
    from obsscale.capability import scores as D

    families = D.load_families(families_yaml)
    table = D.read_score_table(scores_csv, list(metrics), families)
    models = D.select_models(table, families, family_list=family_list)
    if max_model_size is not None:
        models = models[models[D.SIZE] <= max_model_size].reset_index(drop=True)
    if dropna:
        models = models.dropna(subset=list(metrics)).reset_index(drop=True)
    return models, families


def capability_pool(models: pd.DataFrame, families, metrics: Sequence[str], n_components: int,
                    pca_components: int, imputation: dict | None) -> FamilyPool:
    """PC scores of the candidates from imputation + PCA fitted on the candidates themselves."""
    from obsscale.capability.space import CapabilitySpace

    space = CapabilitySpace(list(metrics), n_components=pca_components, imputation=imputation).fit(models)
    pcs = space.transform(models)
    names = [f"PC-{i}" for i in range(1, n_components + 1)]
    frame = pd.concat([models[[MODEL_COLUMN, FAMILY_COLUMN]], pcs[names]], axis=1)
    # the canonical family order (evaluated base families first) is the enumeration order
    return FamilyPool.from_frame(frame, names, family_order=families.order)
