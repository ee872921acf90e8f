"""Stage function of workflow/rules/nmf.smk: NMF of one model set's imputed benchmark matrix
(paper Fig C.19), with each component's per-family law against log10 FLOPs and the
reconstruction error for every component count, written under results/nmf/{set}/."""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from obsscale.capability import scores as D
from obsscale.capability.family_laws import FamilyLaws
from obsscale.capability.nmf import DEFAULTS, BenchmarkNMF, reconstruction_curve
from obsscale.core.errors import ConfigError
from obsscale.core.io import provenance, write_csv, write_json

log = logging.getLogger(__name__)

SETTINGS = ("n_components", "init", "max_iter", "tol", "random_state")


def nmf_settings(block: dict[str, Any] | None) -> dict[str, Any]:
    """The `nmf:` config block with the defaults filled in (the keys of BenchmarkNMF)."""
    settings = {**DEFAULTS, **{k: v for k, v in (block or {}).items() if k in SETTINGS}}
    if int(settings["n_components"]) < 1:
        raise ConfigError(f"config nmf.n_components: must be at least 1, got {settings['n_components']}")
    return settings


def write_nmf(imputed_csv, pc_scores_csv, settings: dict[str, Any], k_max: int, components_csv,
              weights_csv, family_laws_csv, error_curve_csv, provenance_json) -> BenchmarkNMF:
    """Factorise the imputed matrix of a capability set (rows of results/pca/{set}/imputed.csv)."""
    imputed = pd.read_csv(imputed_csv)
    metrics = [c for c in imputed.columns if c not in (D.MODEL, D.FAMILY, "imputed_columns")]
    matrix = imputed.set_index(D.MODEL)[metrics]
    settings = nmf_settings(settings)
    k_max = min(int(k_max), len(metrics))
    if settings["n_components"] > k_max:
        raise ConfigError(f"config nmf.n_components: {settings['n_components']} exceeds the "
                          f"{len(metrics)} benchmarks of {imputed_csv}")
    nmf = BenchmarkNMF(**settings).fit(matrix)
    meta_cols = [D.MODEL, D.FAMILY, D.SIZE, D.FLOPS, "log10_flops", "preregistered"]
    meta = pd.read_csv(pc_scores_csv)
    meta = meta[[c for c in meta_cols if c in meta.columns]]
    weights = meta.merge(nmf.weights_.reset_index(), on=D.MODEL, how="right")
    components = list(nmf.components_.index)
    laws = FamilyLaws(components=components).fit(weights)
    curve = reconstruction_curve(matrix, range(1, k_max + 1),
                                 **{k: v for k, v in settings.items() if k != "n_components"})
    curve["chosen"] = curve["k"] == settings["n_components"]
    log.info("NMF k = %d of %d models × %d benchmarks: relative error %.4f after %d iterations",
             settings["n_components"], *matrix.shape, nmf.relative_err_, nmf.n_iter_)
    for comp in components:
        top = nmf.components_.loc[comp].sort_values(ascending=False).index[:2].tolist()
        log.info("%s: heaviest on %s; mean R² vs log10 FLOPs over families with ≥ 3 models = %.3f",
                 comp, " and ".join(top), laws.average_r2(comp))
    write_csv(nmf.components_.reset_index(names="component"), components_csv)
    write_csv(weights, weights_csv)
    write_csv(laws.table_, family_laws_csv)
    write_csv(curve, error_curve_csv)
    write_json(provenance({"imputed": imputed_csv, "scores": pc_scores_csv}, settings=settings,
                          k_max=k_max, n_models=int(matrix.shape[0]), metrics=metrics,
                          n_iter=nmf.n_iter_, converged=nmf.converged_,
                          relative_error=nmf.relative_err_), provenance_json)
    return nmf
