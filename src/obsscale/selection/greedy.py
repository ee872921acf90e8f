"""For pools too large to enumerate, `greedy_exchange_search` adds the best group while the budget
allows and then improves the set by single swaps, additions and removals until none helps.
"""

from __future__ import annotations

import itertools
import math
from typing import Sequence

import numpy as np

from obsscale.selection.objective import batched_v_optimality
from obsscale.selection.pool import FamilyPool
from obsscale.selection.search import TIE_RTOL, Selection

# Bound on the one-for-two swaps tried per exchange round of the greedy search.
MAX_PAIR_SWAPS = 50_000



class _GroupSet:
    """The objective over sets of groups (families, or single models) of one pool, with the
    budget and group-count limits: what the forward and exchange phases search over."""

    def __init__(self, work: FamilyPool, budget: int, limit: int, fixed: Sequence[int]):
        self.k = work.n_components
        self.n_groups = len(work.families)
        self.budget, self.limit = budget, limit
        self.fixed, self.fixed_set = list(fixed), set(fixed)
        self.sizes = work.family_sizes()
        self.grams = work.family_grams()
        self.total_gram = work.scores.T @ work.scores
        self.ridge = 1e-6 * np.trace(self.total_gram) / self.k * np.eye(self.k)
        # a zero block at index n_groups pads the ragged candidate sets into one index array
        self.grams_pad = np.concatenate([self.grams, np.zeros((1, self.k, self.k))])
        self.sizes_pad = np.concatenate([self.sizes, [0]])

    def score(self, sets: list[list[int]]) -> np.ndarray:
        width = max(1, max(len(s) for s in sets))
        idx = np.full((len(sets), width), self.n_groups, dtype=np.int64)
        for row, members in enumerate(sets):
            idx[row, :len(members)] = members
        counts = self.sizes_pad[idx].sum(axis=1)
        vals = batched_v_optimality(self.total_gram, self.grams_pad[idx].sum(axis=1), counts)
        lengths = np.array([len(m) for m in sets])
        # sets over the budget (or the group limit) are infeasible
        vals[(counts > self.budget) | (lengths > self.limit)] = -np.inf
        return vals

    def fits(self, s: list[int]) -> bool:
        return int(self.sizes[s].sum()) <= self.budget and len(s) <= self.limit

    def forward(self, current: list[int]) -> list[int]:
        """Add the best group while one fits and helps; below K models (objective −∞ everywhere)
        rank by log det of the ridge-regularised Gram matrix."""
        while True:
            cands = [c for c in (current + [j] for j in range(self.n_groups) if j not in current) if self.fits(c)]
            if not cands:
                return current
            vals = self.score(cands)
            if not np.isfinite(vals).any():
                g = np.array([self.grams[c].sum(axis=0) + self.ridge for c in cands])
                vals = np.linalg.slogdet(g)[1]
            best = int(np.argmax(vals))
            now = self.score([current])[0]
            if np.isfinite(now) and vals[best] <= now:
                return current
            current = cands[best]

    def moves(self, current: list[int]) -> list[list[int]]:
        """Every single addition, removal, one-for-one and (for moderate pools) one-for-two swap."""
        outside = [j for j in range(self.n_groups) if j not in current]
        removable = [j for j in current if j not in self.fixed_set]
        moves = [current + [j] for j in outside]
        moves += [[x for x in current if x != j] for j in removable]
        moves += [[x for x in current if x != j] + [o] for j in removable for o in outside]
        # one-for-two swaps let a large group give way to two small ones under a tight budget
        if len(removable) * len(outside) ** 2 <= 2 * MAX_PAIR_SWAPS:
            moves += [[x for x in current if x != j] + [o1, o2] for j in removable
                      for o1, o2 in itertools.combinations(outside, 2)]
        return moves

    def exchange(self, current: list[int], max_rounds: int) -> tuple[list[int], float]:
        """Best-improvement local search until no move improves the objective."""
        now = float(self.score([current])[0])
        for _ in range(max_rounds):
            moves = self.moves(current)
            if not moves:
                break
            vals = self.score(moves)
            best = int(np.argmax(vals))
            if np.isfinite(now):
                improved = vals[best] > now + TIE_RTOL * abs(now)
            else:
                improved = bool(np.isfinite(vals[best]))
            if not improved:
                break
            current, now = moves[best], float(vals[best])
        return current, now


def _work_pool(pool: FamilyPool, include_families: Sequence[str], unit: str) -> tuple[FamilyPool, list[int]]:
    """The pool the search runs on (one group per model for `unit="model"`) and its fixed groups."""
    if unit == "family":
        return pool, pool.family_index(include_families)
    labels = tuple(pool.models) if pool.models else tuple(str(i) for i in range(len(pool.group)))
    work = FamilyPool(families=labels, scores=pool.scores, group=np.arange(pool.scores.shape[0]), models=pool.models)
    return work, np.flatnonzero(np.isin(pool.group, pool.family_index(include_families))).tolist()


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
    work, fixed = _work_pool(pool, include_families, unit)
    if multi_start is None:
        multi_start = unit == "family"
    space = _GroupSet(work, budget, max_groups if max_groups is not None else len(work.families), fixed)
    if not space.fits(list(fixed)):
        raise ValueError(f"the always-included groups alone exceed budget {budget}")
    starts = [space.forward(list(fixed))]
    if multi_start:
        starts += [space.forward(list(fixed) + [j]) for j in range(space.n_groups)
                   if j not in space.fixed_set and space.fits(list(fixed) + [j])]
    best_set, best_val = list(fixed), -math.inf
    for start in starts:
        current, now = space.exchange(start, max_rounds)
        if now > best_val:
            best_set, best_val = current, now
    # searched groups in pool order, then the always-included ones (the exact search's order)
    order = sorted(j for j in best_set if j not in space.fixed_set) + [j for j in fixed if j in best_set]
    if unit == "model":
        fams = tuple(dict.fromkeys(pool.families[pool.group[i]] for i in sorted(order)))
        models = tuple(work.families[i] for i in sorted(order))
    else:
        fams = tuple(pool.families[i] for i in order)
        models = tuple(pool.models_of(order))
    return Selection(budget=budget, method=f"greedy-exchange-{unit}", families=fams, models=models,
                     n_models=int(space.sizes[order].sum()), objective=float(best_val))
