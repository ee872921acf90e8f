"""lm-eval's results as a tidy table with provenance, merged with imported (published) scores into the
wide table the capability (PCA) stage reads, with exactly the columns of the shipped base table."""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from obsscale.core.io import write_csv
from obsscale.evaluation.sheet import load_model_sheet

log = logging.getLogger(__name__)


# Metadata columns of the shipped base table, in order; the wide table repeats them exactly.
META_COLUMNS = ["Model", "Model Family", "Model Size (B)", "Pretraining Data Size (T)", "FLOPs (1E21)"]
TIDY_COLUMNS = [
    "model",
    "benchmark",
    "value",
    "stderr",
    "source",
    "suite",
    "task",
    "metric",
    "num_fewshot",
    "harness_version",
    "task_hash",
    "date",
]


# --------------------------------------------------------------------------------------------
# Aggregation


def _metric_key(bench: dict) -> tuple[str, str]:
    metric = bench.get("metric", "acc")
    filt = bench.get("filter", "none")
    return f"{metric},{filt}", f"{metric}_stderr,{filt}"


def _as_float(x: Any) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):
        return float("nan")


def tidy_results(results_path: str | os.PathLike) -> pd.DataFrame:
    """One lm-eval results JSON of (model, suite) → tidy rows (one per benchmark column)."""
    data = json.loads(Path(results_path).read_text())
    meta = data["obsscale"]
    res = data["results"]
    rows = []
    date = datetime.fromtimestamp(float(data.get("date", 0)), timezone.utc).isoformat(timespec="seconds")
    for column, bench in meta["suite"].items():
        key, stderr_key = _metric_key(bench)
        leaves = bench["leaf_tasks"]
        if bench.get("aggregate", "task") == "mean" or (bench["task"] not in res and len(leaves) > 1):
            # Unweighted mean over the group's tasks (the leaderboard's MMLU: mean of 57 subjects).
            values = [_as_float(res.get(t, {}).get(key)) for t in leaves]
            value = sum(values) / len(values) if values else float("nan")
            errs = [_as_float(res.get(t, {}).get(stderr_key)) for t in leaves]
            stderr = math.sqrt(sum(e * e for e in errs)) / len(errs) if errs else float("nan")
        else:
            entry = res.get(bench["task"], {})
            if key not in entry:
                raise KeyError(
                    f"{results_path}: task '{bench['task']}' has no metric '{key}' "
                    f"(it has {sorted(k for k in entry if ',' in k)}); fix 'metric'/'filter' of "
                    f"benchmark '{column}'"
                )
            value, stderr = _as_float(entry[key]), _as_float(entry.get(stderr_key))
        hashes = [meta["task_hashes"].get(t, "") for t in leaves]
        rows.append(
            {
                "model": meta["model"]["name"],
                "benchmark": column,
                "value": value * float(bench.get("scale", 1.0)),
                "stderr": stderr * float(bench.get("scale", 1.0)),
                "source": "run",
                "suite": meta.get("suite_name", ""),
                "task": bench["task"],
                "metric": key,
                "num_fewshot": bench.get("num_fewshot", data.get("n-shot", {}).get(bench["task"])),
                "harness_version": data.get("lm_eval_version", ""),
                "task_hash": hashlib.sha256("".join(hashes).encode()).hexdigest()[:16]
                if len(hashes) > 1
                else (hashes[0] if hashes else ""),
                "date": date,
            }
        )
    return pd.DataFrame(rows, columns=TIDY_COLUMNS)


def imported_tidy(path: str | os.PathLike, columns: list[str]) -> pd.DataFrame:
    """A shipped wide score table → tidy rows (source = imported) for the given metric columns."""
    df = pd.read_csv(path)
    present = [c for c in columns if c in df.columns]
    long = df.melt(id_vars=["Model"], value_vars=present, var_name="benchmark", value_name="value")
    long = long.dropna(subset=["value"]).rename(columns={"Model": "model"})
    long["source"] = "imported"
    long["stderr"] = float("nan")
    for col in ("suite", "task", "metric", "harness_version", "task_hash", "date"):
        long[col] = ""
    long["suite"] = str(path)
    long["num_fewshot"] = None
    return long[TIDY_COLUMNS]


def wide_scores(
    tidy: pd.DataFrame,
    sheet: pd.DataFrame,
    columns: list[str],
    imported_table: pd.DataFrame | None = None,
    prefer: str = "run",
) -> pd.DataFrame:
    """The wide table of the capability stage: metadata columns then `columns`, one row per model.

    Where a model has both a run and an imported value for a benchmark, `prefer` picks the one
    kept; the other fills cells the preferred source lacks.
    """
    if prefer not in ("run", "imported"):
        raise ValueError(f"prefer must be 'run' or 'imported', not {prefer!r}")
    rank = {prefer: 0, ("imported" if prefer == "run" else "run"): 1}
    t = tidy.dropna(subset=["value"]).copy()
    t["_rank"] = t["source"].map(rank)
    t = t.sort_values("_rank").drop_duplicates(["model", "benchmark"], keep="first")
    values = t.pivot(index="model", columns="benchmark", values="value")

    meta_rows = []
    for _, r in sheet.iterrows():
        meta_rows.append(
            {
                "Model": r["name"],
                "Model Family": r["family"],
                "Model Size (B)": r["params_b"],
                "Pretraining Data Size (T)": r["tokens_t"],
                "FLOPs (1E21)": r["flops_1e21"],
            }
        )
    meta = pd.DataFrame(meta_rows, columns=META_COLUMNS)
    if imported_table is not None:
        extra = imported_table.loc[~imported_table["Model"].isin(meta["Model"]), META_COLUMNS]
        own = imported_table.set_index("Model")
        if prefer == "imported":
            # Published compute metadata replaces the sheet's for models present in both.
            for i, m in enumerate(meta["Model"]):
                if m in own.index:
                    for c in META_COLUMNS[1:]:
                        if pd.notna(own.at[m, c]):
                            meta.at[i, c] = own.at[m, c]
        meta = pd.concat([meta, extra], ignore_index=True)
    wide = meta.merge(values.reindex(columns=columns), left_on="Model", right_index=True, how="left")
    for c in META_COLUMNS[2:] + columns:
        wide[c] = pd.to_numeric(wide[c], errors="coerce")
    return wide[META_COLUMNS + columns]


def aggregate_evaluation(
    results: list[str],
    sheet_path: str,
    sheet_schema: str,
    columns: list[str],
    tidy_output: str,
    wide_output: str,
    imported: str | None = None,
    prefer: str = "run",
) -> pd.DataFrame:
    """Results JSONs of a model sheet (+ an imported table) → tidy CSV and wide CSV."""
    sheet = load_model_sheet(sheet_path, sheet_schema)
    frames = []
    for path in results:
        suite_name = Path(path).stem
        df = tidy_results(path)
        df["suite"] = suite_name
        frames.append(df)
    imported_table = None
    if imported:
        imported_table = pd.read_csv(imported)
        frames.append(imported_tidy(imported, columns))
    tidy = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=TIDY_COLUMNS)
    tidy = tidy.sort_values(["model", "benchmark", "source"], kind="stable").reset_index(drop=True)
    wide = wide_scores(tidy, sheet, columns, imported_table, prefer)
    write_csv(tidy, tidy_output)
    write_csv(wide, wide_output)
    log.info(
        "aggregated %d results files (%d run values) into %s (%d models × %d benchmarks)",
        len(results),
        int((tidy["source"] == "run").sum()),
        wide_output,
        len(wide),
        len(columns),
    )
    return wide
