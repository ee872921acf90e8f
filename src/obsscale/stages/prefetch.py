"""Download beforehand what a run's jobs will read from the Hugging Face hub.

Compute nodes of many clusters have no internet.  `prefetch` runs on a node that has (the login
node), with the run's config: it downloads every hub model of the evaluation sheet and of the
PassUntil series at its revision into the hub cache (`HF_HOME`), and loads every lm-eval task of
the configured suites and every PassUntil task once, which fills the datasets cache.  The jobs
then run with `HF_HUB_OFFLINE=1` (docs/cluster.md).  Local folders and models the workflow trains
itself (under results/) are skipped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from obsscale.stages.config_numbers import coerce_numbers

__all__ = ["FetchList", "fetch_list", "is_hub_id", "load_run_config", "prefetch"]

log = logging.getLogger(__name__)

# Weight formats a model repository may hold besides safetensors; skipped when it has safetensors.
OTHER_WEIGHTS = ["*.bin", "*.pt", "*.pth", "*.h5", "*.msgpack", "*.ckpt", "*.onnx", "*.gguf"]


def is_hub_id(model: str, root: Path) -> bool:
    """A hub repository id (org/name) rather than a local or workflow-made folder."""
    model = str(model)
    if model.startswith(("/", ".", "~", "results/")) or model.count("/") != 1:
        return False
    return not (root / model).exists()


def _merge(base: dict, extra: dict) -> dict:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value
    return base


def load_run_config(configfiles: Iterable[str | Path], root: Path) -> dict:
    """The default config with `configfiles` merged in, as Snakemake builds it."""
    config = yaml.safe_load((root / "config/config.yaml").read_text())
    for path in configfiles:
        _merge(config, yaml.safe_load(Path(path).read_text()) or {})
    return coerce_numbers(config, root / "workflow/schemas/config.schema.yaml")


@dataclass
class FetchList:
    models: list[tuple[str, str | None]] = field(default_factory=list)  # (repo id, revision)
    lm_eval_tasks: list[str] = field(default_factory=list)
    include_paths: list[str] = field(default_factory=list)
    passuntil_tasks: list[str] = field(default_factory=list)  # task YAML paths

    def add_model(self, repo: str, revision: str | None) -> None:
        if (repo, revision) not in self.models:
            self.models.append((repo, revision))


def fetch_list(config: dict, root: Path) -> FetchList:
    """What the jobs of `config` read from the hub."""
    out = FetchList()
    evaluation = config.get("evaluation") or {}
    if evaluation.get("enabled"):
        from obsscale.evaluation.plan import plan_evaluation
        from obsscale.evaluation.sheet import model_suites, runnable_benchmarks

        plan = plan_evaluation(evaluation, config["families"], root / "workflow/schemas/models.schema.yaml",
                               root / "workflow/schemas/suites.schema.yaml")
        for _, row in plan.models.iterrows():
            if is_hub_id(row["model"], root):
                out.add_model(row["model"], row.get("revision") or None)
            for suite in model_suites(row, evaluation["suites"]):
                allow = evaluation.get("allow_code_execution", False)
                runnable = runnable_benchmarks(plan.suites[suite], allow)
                for bench in runnable.values():
                    if bench["task"] not in out.lm_eval_tasks:
                        out.lm_eval_tasks.append(bench["task"])
        out.include_paths = list(evaluation.get("include_paths") or [])
    passuntil = config.get("passuntil") or {}
    if passuntil.get("enabled"):
        for series in (passuntil.get("series") or {}).values():
            for model in series["models"]:
                if is_hub_id(model["path"], root):
                    out.add_model(model["path"], None)
        out.passuntil_tasks = list((passuntil.get("tasks") or {}).values())
    return out


def _download_model(repo: str, revision: str | None) -> str:
    from huggingface_hub import HfApi, snapshot_download

    files = HfApi().list_repo_files(repo, revision=revision)
    ignore = OTHER_WEIGHTS if any(f.endswith(".safetensors") for f in files) else None
    return snapshot_download(repo, revision=revision, ignore_patterns=ignore)


def prefetch(todo: FetchList, *, say: Callable[[str], Any] = print) -> None:
    """Download the models and load the tasks of `todo` (network needed)."""
    for repo, revision in todo.models:
        say(f"model {repo} (revision {revision or 'default'})")
        say(f"  -> {_download_model(repo, revision)}")
    if todo.lm_eval_tasks:
        from lm_eval.tasks import TaskManager

        include = [str(Path(p).resolve()) for p in todo.include_paths]
        manager = TaskManager(include_path=include, include_defaults=False) if include else None
        if manager is None or not set(todo.lm_eval_tasks) <= set(manager.all_tasks):
            manager = TaskManager(include_path=include or None)  # indexes lm-eval's own tasks too
        for task in todo.lm_eval_tasks:
            say(f"lm-eval task {task}")
            manager.load(task)  # builds the task, which downloads its dataset
    for path in todo.passuntil_tasks:
        from obsscale.passuntil.tasks import load_task

        say(f"PassUntil task {path}")
        load_task(path)
