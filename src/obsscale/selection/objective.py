"""The V-optimality objective of a model subset (paper Sec 5, spec §7.5).

Given the capability-space scores S (n × K, the first K PC scores of every candidate model), a set M
of models to evaluate is scored by the V-optimality criterion of optimal experimental design,

    Tr(SᵀS (S_MᵀS_M)⁻¹),

the summed prediction variance, over all candidates, of a least-squares fit on the PC scores of M
alone (up to the noise variance).  Smaller is better; like the paper we *maximise* its negative and
give sets with fewer than K models (or a singular S_MᵀS_M) the value −∞.
"""

from __future__ import annotations

import math

import numpy as np

# det(G) / prod(diag G) lies in [0, 1] for a positive semi-definite G (Hadamard's inequality) and
# does not depend on the scale of the scores; below this G is treated as singular (objective −∞).
SINGULAR_RTOL = 1e-12


def is_singular(det: np.ndarray, diag_prod: np.ndarray) -> np.ndarray:
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
    if is_singular(np.linalg.det(gram), np.prod(np.diag(gram))):
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
        ok = (counts >= k) & ~is_singular(det, diag_prod)
        out[ok] = -num[ok] / det[ok]
        return out
    det = np.linalg.det(grams)
    ok = (counts >= k) & ~is_singular(det, diag_prod)
    if ok.any():
        rhs = np.broadcast_to(total_gram, (int(ok.sum()), k, k))
        sol = np.linalg.solve(grams[ok], rhs)
        out[ok] = -np.trace(sol, axis1=1, axis2=2)
    return out
