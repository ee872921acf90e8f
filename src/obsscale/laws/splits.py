"""Train/test splits of a model set (paper §6).

A split is a plain dict, as written in an experiment's config block:

    {by: cutoff, column: "FLOPs (1E21)", reference_model: meta-llama/Llama-2-7b-hf}   # ≤ that model's value
    {by: cutoff, column: "FLOPs (1E21)", threshold: 21.6}                              # ≤ a number
    {by: cutoff, column: "FLOPs (1E21)", ratio: 0.5}                   # ≤ min + 0.5·(max − min)
    {by: rank, column: "FLOPs (1E21)", test_fraction: 0.2}   # largest 20 % (int-truncated) to test
    {by: rank, column: y, test_count: 2}                      # `y` is the experiment's processed target
    {by: random, test_fraction: 0.2, seed: 42}

Models whose split column is missing go to test (a model with unknown FLOPs cannot be placed below a
compute cutoff).  The result is a boolean Series: True = training model.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from obsscale.core.errors import InputError, did_you_mean
from obsscale.core.registry import Registry

TARGET = "y"


class SplitError(InputError):
    pass


def _column(df: pd.DataFrame, spec: dict, y: pd.Series | None) -> pd.Series:
    col = spec.get("column")
    if col is None:
        raise SplitError(f"split {spec} needs a 'column'")
    if col == TARGET:
        if y is None:
            raise SplitError("split by the target 'y' needs the target values")
        return pd.Series(np.asarray(y, float), index=df.index)
    if col not in df.columns:
        raise SplitError(f"split column '{col}' is not in the table (columns: {list(df.columns)})")
    return pd.to_numeric(df[col], errors="coerce")


def resolve_threshold(df: pd.DataFrame, spec: dict, y=None, model_column: str = "Model") -> float:
    """The cutoff value of a `cutoff` split (a number, a reference model's value, or a ratio)."""
    values = _column(df, spec, y)
    given = [k for k in ("threshold", "reference_model", "ratio") if k in spec]
    if len(given) != 1:
        raise SplitError(f"a cutoff split needs exactly one of threshold / reference_model / ratio, got {given}")
    if "threshold" in spec:
        return float(spec["threshold"])
    if "ratio" in spec:
        return float(values.min() + float(spec["ratio"]) * (values.max() - values.min()))
    name = spec["reference_model"]
    hit = df[model_column] == name
    if not hit.any():
        hint = did_you_mean(name, df[model_column].astype(str).tolist())
        raise SplitError(f"reference model '{name}' of the cutoff split is not in the model set{hint}")
    value = values[hit].iloc[0]
    if not np.isfinite(value):
        raise SplitError(f"reference model '{name}' has no '{spec['column']}' value")
    return float(value)


def _n_test(n: int, spec: dict) -> int:
    if "test_count" in spec:
        return int(spec["test_count"])
    frac = float(spec.get("test_fraction", 0.2))
    # A fraction ≥ 1 is a count, as in the paper's code; fractions are truncated with int().
    return int(frac) if frac >= 1 else int(frac * n)


def _cutoff(df, spec, y):
    values = _column(df, spec, y)
    return (values <= resolve_threshold(df, spec, y)).fillna(False) & values.notna()


def _rank(df, spec, y):
    values = _column(df, spec, y)
    # Descending with missing values first: unknown-compute models are always test.
    order = np.lexsort((-values.fillna(np.inf).to_numpy(), ~values.isna().to_numpy()))
    n_test = _n_test(len(df), spec)
    train = np.ones(len(df), bool)
    train[order[:n_test]] = False
    return pd.Series(train, index=df.index)


def _random(df, spec, y):
    rng = np.random.RandomState(int(spec.get("seed", 42)))
    perm = rng.permutation(len(df))
    train = np.ones(len(df), bool)
    train[perm[: _n_test(len(df), spec)]] = False
    return pd.Series(train, index=df.index)


SPLITS: Registry = Registry("split")
SPLITS.register("cutoff", _cutoff)
SPLITS.register("rank", _rank)
SPLITS.register("random", _random)


def split_models(df: pd.DataFrame, spec: dict, y=None) -> pd.Series:
    """Boolean training mask of `df` under split `spec`."""
    fn = SPLITS.get(spec.get("by", ""))
    return fn(df.reset_index(drop=True), spec, y).set_axis(df.index).astype(bool)


def describe_split(spec: dict) -> str:
    by = spec.get("by")
    if by == "cutoff":
        what = spec.get("reference_model", spec.get("threshold", f"ratio {spec.get('ratio')}"))
        return f"{spec['column']} ≤ {what}"
    if by == "rank":
        n = spec.get("test_count", spec.get("test_fraction"))
        return f"top {n} by {spec['column']} to test"
    return f"random ({spec.get('test_fraction', 0.2)} test, seed {spec.get('seed', 42)})"
