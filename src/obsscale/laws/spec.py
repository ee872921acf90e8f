"""Experiment specs: a config block (`experiments.<name>`) resolved against the defaults and every
name checked against its registry, with errors naming the key path; predictor sets (PC-1..K or log10
compute)."""

from __future__ import annotations

import copy
import logging
import re
from dataclasses import dataclass
from typing import Any

from obsscale.capability import scores as D
from obsscale.core.errors import ConfigError, did_you_mean
from obsscale.laws.links import LINKS
from obsscale.laws.optimisers import OPTIMISERS
from obsscale.laws.splits import SPLITS

log = logging.getLogger(__name__)

# Settings every experiment inherits unless its block overrides them.
DEFAULTS: dict[str, Any] = {
    "predictors": ["PC-1..3"],
    "main_predictors": "PC-1..3",
    "link": "sigmoid",
    "estimator": "least_squares",
    "huber_delta": 1.0,
    "n_starts": 4,
    "divergence_threshold": 10.0,
    "split": {"by": "cutoff", "column": D.FLOPS, "reference_model": "meta-llama/Llama-2-7b-hf"},
    "reference_family": "Llama-2",
    "reference_fit_set": "all",
    "extra_reference_families": [],
    "preregistered": "holdout_test",
    "n_boot": 100,
    "band_level": 0.95,
    "seed": 0,  # the multi-start fits' random starts and the bootstrap resamples
    "sweeps": {},
}
PREREG_HANDLING = ("holdout_test", "exclude", "train")
ROLES = ("train", "test", "preregistered")


# ---------------------------------------------------------------------------------------------------
# Predictor sets


@dataclass(frozen=True)
class PredictorSet:
    """First `k` principal components, or log10 of one compute column."""

    name: str
    kind: str  # "pcs" | "compute"
    k: int = 0
    column: str = ""

    @property
    def label(self) -> str:
        if self.kind == "pcs":
            return "PC-1" if self.k == 1 else f"PC-1..{self.k}"
        return {D.FLOPS: "log10 FLOPs", D.SIZE: "log10 size"}.get(self.column, f"log10 {self.column}")


COMPUTE_PREDICTORS = {"log10_flops": D.FLOPS, "log10_size": D.SIZE}
_PC = re.compile(r"^PC-1(?:\.\.(\d+))?$")


def parse_predictors(name: str) -> PredictorSet:
    m = _PC.match(str(name))
    if m:
        return PredictorSet(name, "pcs", int(m.group(1) or 1))
    if name in COMPUTE_PREDICTORS:
        return PredictorSet(name, "compute", column=COMPUTE_PREDICTORS[name])
    options = ["PC-1", "PC-1..2", "PC-1..3", "PC-1..4", *COMPUTE_PREDICTORS]
    raise ConfigError(
        f"unknown predictor set '{name}' (use PC-1..K, log10_flops or log10_size){did_you_mean(name, options)}"
    )


# ---------------------------------------------------------------------------------------------------
# Config validation: every message names the key path.


def _err(path: str, msg: str) -> ConfigError:
    return ConfigError(f"config {path}: {msg}")


def resolve_experiment(name: str, block: dict, config: dict) -> dict:
    """An experiment block with defaults filled in and every name checked against its registry."""
    path = f"experiments.{name}"
    if not isinstance(block, dict):
        raise _err(path, "must be a mapping")
    spec = copy.deepcopy(DEFAULTS)
    # The capability space of every law is built like the configured one (imputation, #PCs stored).
    cs = config.get("capability_space", {}) or {}
    for key in ("imputation", "n_components"):
        if key in cs:
            spec[key] = copy.deepcopy(cs[key])
    spec.update(copy.deepcopy(config.get("laws", {}) or {}))
    spec.update(copy.deepcopy(block))
    spec["name"] = name
    _resolve_data(spec, config.get("scores", {}), path)
    targets = spec.get("targets")
    if not isinstance(targets, list) or not targets:
        raise _err(f"{path}.targets", "needs a non-empty list of targets")
    seen = set()
    for i, t in enumerate(targets):
        t = targets[i] = resolve_target(t, f"{path}.targets[{i}]")
        if t["name"] in seen:
            raise _err(f"{path}.targets[{i}].name", f"duplicate target name '{t['name']}'")
        seen.add(t["name"])
    for i, p in enumerate(spec["predictors"]):
        try:
            parse_predictors(p)
        except ConfigError as exc:
            raise _err(f"{path}.predictors[{i}]", str(exc)) from None
    if spec["main_predictors"] not in spec["predictors"]:
        spec["main_predictors"] = spec["predictors"][0]
    check_law_names(spec, path)
    if spec["preregistered"] not in PREREG_HANDLING:
        raise _err(f"{path}.preregistered", f"'{spec['preregistered']}' is not one of {PREREG_HANDLING}")
    if spec["reference_fit_set"] not in ("all", "train"):
        raise _err(f"{path}.reference_fit_set", "must be 'all' or 'train'")
    _check_sweeps(spec, path)
    return spec


def _resolve_data(spec: dict, scores: dict, path: str) -> None:
    """The `data` block (score table, targets CSV, join column, model set) and the metrics."""
    data = spec.get("data")
    if not isinstance(data, dict):
        raise _err(path, "needs a 'data' block (scores, targets_csv)")
    if data.get("scores") not in scores:
        raise _err(f"{path}.data.scores", f"'{data.get('scores')}' is not a score table of `scores:` "
                   f"(known: {sorted(scores)}){did_you_mean(data.get('scores'), scores)}")
    if "targets_csv" not in data:
        raise _err(f"{path}.data", "needs 'targets_csv' (the CSV with the downstream target columns)")
    data.setdefault("join", D.MODEL)
    data.setdefault("families", "eval_base")
    if data["families"] not in ("eval_base", "eval_instruct", "all"):
        raise _err(f"{path}.data.families", f"'{data['families']}' is not one of eval_base, eval_instruct, all")
    spec["metrics"] = list(spec.get("metrics") or scores[data["scores"]]["metrics"])
    unknown = [m for m in spec["metrics"] if m not in scores[data["scores"]]["metrics"]]
    if unknown:
        raise _err(f"{path}.metrics", f"{unknown} are not metrics of score table '{data['scores']}' "
                   f"({scores[data['scores']]['metrics']})")


def _check_sweeps(spec: dict, path: str) -> None:
    for sname, sweep in (spec.get("sweeps") or {}).items():
        _check_split(sweep.get("split", {}), f"{path}.sweeps.{sname}.split")
        r = sweep.get("test_ratios", {})
        if not {"start", "stop", "num"} <= set(r):
            raise _err(f"{path}.sweeps.{sname}.test_ratios", "needs start, stop, num")
        unknown = sorted(set(sweep.get("targets") or []) - {t["name"] for t in spec["targets"]})
        if unknown:
            raise _err(f"{path}.sweeps.{sname}.targets", f"{unknown} are not targets of this experiment")


def resolve_target(entry: dict | str, path: str) -> dict:
    """A target entry with its defaults: a column name alone, or a mapping with at least `column`
    (`name`, `label`, `range` [floor, ceiling] of the `minmax_norm` normalisation, `valid_range`,
    `split`)."""
    t = {"column": entry} if isinstance(entry, str) else copy.deepcopy(entry)
    if not isinstance(t, dict) or "column" not in t:
        raise _err(path, "needs at least 'column' (the target's column in targets_csv)")
    t.setdefault("name", re.sub(r"[^A-Za-z0-9_]+", "_", str(t["column"])).strip("_"))
    t.setdefault("label", t["name"])
    rng = t.setdefault("range", [0.0, 1.0])
    if (not isinstance(rng, (list, tuple)) or len(rng) != 2
            or not all(isinstance(v, (int, float)) for v in rng) or not rng[0] < rng[1]):
        raise _err(f"{path}.range", f"must be [floor, ceiling] with floor < ceiling, got {rng!r}")
    vr = t.get("valid_range")
    if vr is not None and (not isinstance(vr, (list, tuple)) or len(vr) != 2 or not vr[0] < vr[1]):
        raise _err(f"{path}.valid_range", f"must be [low, high] with low < high, got {vr!r}")
    if "split" in t:
        _check_split(t["split"], f"{path}.split")
    return t


def check_law_names(spec: dict, path: str) -> None:
    """The link, optimiser and split of a spec must be registered names."""
    for key, reg, what in (("link", LINKS, "link function"), ("estimator", OPTIMISERS, "estimator")):
        if spec[key] not in reg:
            raise _err(f"{path}.{key}", f"unknown {what} '{spec[key]}' (known: {sorted(reg)}){did_you_mean(spec[key], reg)}")
    _check_split(spec["split"], f"{path}.split")


def law_spec(name: str, path: str, **settings) -> dict:
    """A spec for fitting laws outside an experiment block (the selection's held-out fits): the
    experiments' defaults overridden by `settings`, names checked; `path` names the config key in
    errors."""
    spec = copy.deepcopy(DEFAULTS)
    spec.update(copy.deepcopy(settings))
    spec["name"] = name
    check_law_names(spec, path)
    return spec


def _check_split(split, path):
    if not isinstance(split, dict) or split.get("by") not in SPLITS:
        by = split.get("by") if isinstance(split, dict) else split
        raise _err(path, f"unknown split '{by}' (known: {sorted(SPLITS)}){did_you_mean(by, SPLITS)}")
