"""Which (model, suite) evaluations a config asks for, with each job's resources."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

import pandas as pd

from obsscale.evaluation.sheet import (
    EvaluationConfigError,
    _is_nan,
    check_families,
    load_model_sheet,
    load_suites,
    model_suites,
)
from obsscale.stages.cluster import default_threads

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------------
# The plan of the workflow: jobs, columns and resources from the config


@dataclass
class EvaluationPlan:
    """The validated model sheet and suites of an `evaluation:` config block, and what follows
    from them: one job per (model, suite), the wide table's columns, each job's resources."""

    settings: dict[str, Any]
    models: pd.DataFrame
    suites: dict[str, dict]

    def model(self, slug: str) -> dict[str, Any]:
        # Empty cells as None, not NaN: rule params are compared between runs, and NaN != NaN.
        row = self.models.loc[slug].to_dict()
        return {k: (None if _is_nan(v) else v) for k, v in row.items()}

    def jobs(self) -> list[str]:
        """Results files of every (model, suite) of the sheet."""
        return [
            f"results/eval/runs/{slug}/{suite}.json"
            for slug, row in self.models.iterrows()
            for suite in model_suites(row, self.settings["suites"])
        ]

    def columns(self) -> list[str]:
        """Metric columns of the wide table: the benchmarks of the configured suites, in order."""
        columns: list[str] = []
        for suite in self.settings["suites"]:
            for column in self.suites[suite]["benchmarks"]:
                if column not in columns:
                    columns.append(column)
        return columns

    def resources(self, slug: str) -> dict[str, Any]:
        """Snakemake resources of a model's jobs: `gpu`, `gpu_model` ('' = any), `mem_mb`,
        `runtime` (minutes), and the job's `threads` (CPUs; the backend's default if empty)."""
        row = self.model(slug)
        defaults = self.settings.get("default_resources") or {}
        mem_gb = row.get("mem_gb") or defaults.get("mem_gb", 16)
        runtime = row.get("runtime_min") or defaults.get("runtime_min", 240)
        threads = row.get("threads") or default_threads(row.get("backend"))
        return {
            "gpu": int(row.get("gpus") or 0),
            "gpu_model": str(row.get("gpu_model") or ""),
            "mem_mb": int(mem_gb * 1024),
            "runtime": int(runtime),
            "threads": int(threads),
        }


def plan_evaluation(
    settings: dict[str, Any],
    families_path: str | os.PathLike,
    sheet_schema: str | os.PathLike,
    suites_schema: str | os.PathLike,
) -> EvaluationPlan:
    """Validate the sheet, the suites and the families, and check every suite a row names exists."""
    sheet = settings["model_sheet"]
    models = load_model_sheet(sheet, sheet_schema)
    suites = load_suites(settings["suites_file"], suites_schema)
    check_families(models, families_path, sheet)
    for name in settings["suites"]:
        if name not in suites:
            raise EvaluationConfigError(
                f"evaluation.suites: unknown suite '{name}' (suites in {settings['suites_file']}: "
                f"{', '.join(suites)})"
            )
    for _, row in models.iterrows():
        for name in model_suites(row, settings["suites"]):
            if name not in suites:
                raise EvaluationConfigError(
                    f"{sheet}: row {row['row']}, field 'suites': unknown suite '{name}' (suites in "
                    f"{settings['suites_file']}: {', '.join(suites)})"
                )
    return EvaluationPlan(settings=settings, models=models, suites=suites)
