"""Evaluation stage: lm-evaluation-harness over a model sheet, scores with provenance.

lm-eval is the engine; this module only
- reads and validates the model sheet (`config/models.tsv`) and the task suites (`config/suites.yaml`),
- runs one lm-eval call per (model, suite), so a model is loaded once for all tasks of a suite, with
  lm-eval's response cache so that an interrupted job resumes inside the job,
- turns lm-eval's results into a tidy table with provenance, merges it with imported (published)
  scores and writes the wide table the capability (PCA) stage reads, with exactly the columns of the
  shipped base table.

Nothing here imports snakemake; the rules in workflow/rules/eval.smk call these functions.
"""


from __future__ import annotations

import glob
import hashlib
import json
import logging
import os
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from obsscale.core.io import atomic_path
from obsscale.evaluation.sheet import EvaluationConfigError, _is_nan, runnable_benchmarks

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------------
# Running lm-eval


def lm_eval_model(row: dict) -> tuple[str, dict[str, Any]]:
    """lm-eval model type and arguments for a sheet row (hf or vllm)."""
    args: dict[str, Any] = {"pretrained": row["model"]}
    if row.get("revision"):
        args["revision"] = row["revision"]
    if row.get("dtype"):
        args["dtype"] = row["dtype"]
    if row.get("backend", "hf") == "vllm":
        args["tensor_parallel_size"] = max(1, int(row.get("gpus") or 1))
    for item in str(row.get("model_args") or "").split(","):
        if item.strip():
            key, _, value = item.partition("=")
            args[key.strip()] = value.strip()
    return row.get("backend", "hf"), args


def _cache_key(model_type: str, model_args: dict) -> str:
    # lm-eval's cache keys on the request only, not on the model: keep one cache per model
    # *configuration* so a changed revision or dtype never reuses stale responses.
    blob = json.dumps({"type": model_type, "args": model_args}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def _remove_stale_temporaries(path: Path) -> None:
    """A killed job leaves its atomic-write temporary behind; it was never a result."""
    for tmp in glob.glob(str(path.parent / f".{path.name}.*.tmp")):
        log.info("removing the temporary file of an interrupted run: %s", tmp)
        os.unlink(tmp)


def _check_model_exists(row: dict) -> None:
    model = str(row["model"])
    # A hub id is "org/name"; anything else that names no folder is a missing local checkpoint.
    looks_local = model.startswith(("/", ".", "~")) or model.count("/") > 1
    if looks_local and not Path(model).expanduser().exists():
        raise FileNotFoundError(
            f"model '{row['name']}' (model sheet row {row.get('row', '?')}): no folder '{model}'"
        )


def _load_model(model_type: str, model_args: dict, batch_size: Any, device: str | None,
                progress_interval: float) -> Any:
    """lm-eval's model object, made as simple_evaluate would make it from the name, with its
    request methods reporting progress to the job's log (obsscale.evaluation.progress)."""
    import lm_eval.api.registry

    from obsscale.evaluation.progress import report_progress

    log.info("loading %s model %s (once for the whole suite)", model_type, model_args)
    lm = lm_eval.api.registry.get_model(model_type).create_from_arg_obj(
        model_args, {"batch_size": batch_size, "max_batch_size": None, "device": device}
    )
    return report_progress(lm, log, interval=progress_interval)


def task_config_hash(config: dict) -> str:
    """A hash of one task's resolved lm-eval config (prompt, metrics, shots): the task identity."""
    blob = json.dumps(config, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def run_suite(
    model: dict,
    suite: dict,
    output: str | os.PathLike,
    cache_dir: str | os.PathLike,
    include_paths: list[str] | None = None,
    allow_code_execution: bool = False,
    limit: int | float | None = None,
    bootstrap_iters: int = 1000,
    seed: int = 1234,
    device: str | None = None,
    suite_name: str = "",
    sandbox: str | None = None,
    threads: int | None = None,
    progress_interval: float = 60.0,
) -> dict:
    """Evaluate one model on every task of one suite in a single lm-eval call.

    The model is loaded once; lm-eval's response cache (one SQLite file per model configuration
    and suite under `cache_dir`) keeps every answered request, so a job that is killed and
    restarted re-computes only what was not answered yet.  The results JSON is written whole
    (lm-eval's configs, versions, seeds and environment) to a temporary file and renamed onto
    `output` only when complete.  Progress lines (requests done / total, rate, ETA) go to the
    log at least every 5 % and every `progress_interval` seconds; `threads` caps the CPU threads
    of a transformers model (the job's CPUs).

    Benchmarks of the project's own code tasks (`code_tasks.SANDBOXED_TASKS`, e.g. HumanEval) judge
    generated code in the sandbox of mode `sandbox` (default bwrap); where it cannot run, the suite
    stops here, before a model is loaded, with the fix named.
    """
    import lm_eval.tasks  # noqa: F401  (first, so that a missing lm-eval fails before any check)

    from obsscale.evaluation.code_tasks import TASKS_DIR

    output = Path(output)
    _remove_stale_temporaries(output)
    benchmarks = _suite_benchmarks(suite, allow_code_execution, sandbox)
    _check_model_exists(model)
    model_type, model_args = lm_eval_model(model)
    device = _torch_device(model_type, device, threads)
    include_paths = [str(Path(p).resolve()) for p in include_paths or []] + [str(TASKS_DIR)]
    started = time.time()
    task_manager = _task_manager(benchmarks, include_paths)
    task_objects, plan = _load_tasks(benchmarks, task_manager)
    cache_prefix = _cache_prefix(cache_dir, model_type, model_args)
    log.info("evaluating %s (%s, %s) on %d benchmarks (%d lm-eval tasks) in one call; cache %s",
             model["name"], model_type, model_args, len(plan),
             sum(len(p["leaf_tasks"]) for p in plan.values()), cache_prefix)
    results = _evaluate(
        model, model_type, model_args, task_objects, task_manager, cache_prefix,
        device=device, limit=limit, bootstrap_iters=bootstrap_iters, seed=seed,
        allow_code_execution=allow_code_execution, progress_interval=progress_interval,
    )
    if results is None:  # non-zero rank of a distributed run: rank 0 writes the file
        return {}
    _write_results(results, output, model, model_type, plan, benchmarks, suite_name, started)
    return results


def _suite_benchmarks(suite: dict, allow_code_execution: bool, sandbox: str | None) -> dict:
    """The suite's runnable benchmarks; sets up code execution and its sandbox where they need it."""
    from obsscale.evaluation.code_tasks import SANDBOX_ENV

    benchmarks = runnable_benchmarks(suite, allow_code_execution)
    if not benchmarks:
        raise EvaluationConfigError(
            "no benchmark of the suite can run (all execute code and allow_code_execution is false)"
        )
    if allow_code_execution and any(b.get("unsafe_code") for b in benchmarks.values()):
        # HF `evaluate`'s code_eval metric refuses to execute generated code without this.
        os.environ["HF_ALLOW_CODE_EVAL"] = "1"
    if _uses_sandbox(benchmarks):
        from obsscale.passuntil.sandbox import check_mode, isolation

        mode = check_mode(sandbox)
        os.environ[SANDBOX_ENV] = mode
        log.info("generated code is judged in the %s sandbox: %s", mode, isolation(mode)["layers"])
    return benchmarks


def _uses_sandbox(benchmarks: dict) -> bool:
    from obsscale.evaluation.code_tasks import SANDBOXED_TASKS

    return any(b["task"] in SANDBOXED_TASKS for b in benchmarks.values())


def _torch_device(model_type: str, device: str | None, threads: int | None) -> str | None:
    """The device of a transformers model (cuda where there is one) and its CPU thread cap."""
    if model_type == "hf":
        import torch

        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if threads:
            torch.set_num_threads(int(threads))
    return device


def _task_manager(benchmarks: dict, include_paths: list[str]) -> Any:
    """lm-eval's task index holding every task of the suite (unknown tasks: one clear error)."""
    from lm_eval.tasks import TaskManager

    # Index only local task folders when they hold every task of the suite: indexing lm-eval's
    # 200+ built-in task folders costs seconds per job.
    task_names = {b["task"] for b in benchmarks.values()}
    task_manager = None
    if include_paths:
        local = TaskManager(include_path=include_paths, include_defaults=False)
        if task_names <= set(local.all_tasks):
            task_manager = local
    if task_manager is None:
        task_manager = TaskManager(include_path=include_paths or None)
    unknown = sorted(t for t in task_names if t not in task_manager.all_tasks)
    if unknown:
        raise EvaluationConfigError(
            f"lm-eval knows no task or group named {unknown} (built-in tasks and include paths "
            f"{include_paths or 'none'})"
        )
    return task_manager


def _load_tasks(benchmarks: dict, task_manager: Any) -> tuple[list, dict]:
    """lm-eval task objects configured per benchmark, and the plan (benchmark -> leaf tasks)."""
    task_objects = []
    plan = {}
    loaded_by_task: dict[str, tuple[dict, list[str], str]] = {}
    owner_of_leaf: dict[str, str] = {}
    for column, bench in benchmarks.items():
        settings = {k: bench.get(k) for k in ("num_fewshot", "generation_kwargs")}
        if bench["task"] in loaded_by_task:
            # Several columns may read one task (e.g. two metrics) if they run it identically.
            first_settings, leaves, first = loaded_by_task[bench["task"]]
            if settings != first_settings:
                raise EvaluationConfigError(
                    f"benchmarks '{first}' and '{column}' run task '{bench['task']}' with different "
                    "settings in one suite; lm-eval runs a task once per call: put them in two suites"
                )
            plan[column] = {**bench, "leaf_tasks": leaves}
            continue
        loaded = task_manager.load(bench["task"])
        leaves = sorted(loaded["tasks"])
        for leaf in leaves:
            if leaf in owner_of_leaf:
                raise EvaluationConfigError(
                    f"benchmarks '{owner_of_leaf[leaf]}' and '{column}' both contain lm-eval task "
                    f"'{leaf}'; lm-eval runs a task once per call: put them in two suites"
                )
            owner_of_leaf[leaf] = column
        _configure_tasks(loaded["tasks"].values(), bench)
        top = [g for name, g in loaded["groups"].items() if name == bench["task"]]
        task_objects.extend(top or list(loaded["tasks"].values()))
        loaded_by_task[bench["task"]] = (settings, leaves, column)
        plan[column] = {**bench, "leaf_tasks": leaves}
    return task_objects, plan


def _configure_tasks(tasks, bench: dict) -> None:
    """A benchmark's shots and generation settings, set on each of its lm-eval tasks."""
    for task in tasks:
        if bench.get("num_fewshot") is not None:
            task.set_config(key="num_fewshot", value=bench["num_fewshot"])
        if bench.get("generation_kwargs"):
            task.set_config(key="generation_kwargs", value=dict(bench["generation_kwargs"]), update=True)


def _cache_prefix(cache_dir: str | os.PathLike, model_type: str, model_args: dict) -> str:
    """lm-eval's response-cache prefix for this model configuration (the folder is created)."""
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    return str(cache_dir / _cache_key(model_type, model_args))


def _evaluate(model: dict, model_type: str, model_args: dict, task_objects: list, task_manager: Any,
              cache_prefix: str, *, device: str | None, limit: int | float | None,
              bootstrap_iters: int, seed: int, allow_code_execution: bool,
              progress_interval: float) -> dict | None:
    """One lm-eval call over all tasks with the response cache; failures name the model."""
    import lm_eval

    try:
        lm = _load_model(model_type, model_args, model.get("batch_size") or 1, device, progress_interval)
        return lm_eval.simple_evaluate(
            model=lm,
            model_args=model_args,
            tasks=task_objects,
            task_manager=task_manager,
            batch_size=model.get("batch_size") or 1,
            device=device,
            use_cache=cache_prefix,
            limit=limit,
            bootstrap_iters=bootstrap_iters,
            log_samples=False,
            random_seed=seed,
            numpy_random_seed=seed,
            torch_random_seed=seed,
            fewshot_random_seed=seed,
            confirm_run_unsafe_code=allow_code_execution,
        )
    except (OSError, ValueError, RuntimeError) as e:
        raise RuntimeError(
            f"lm-eval failed for model '{model['name']}' ({model['model']}, revision "
            f"{model.get('revision') or 'default'}, backend {model_type}): {e}"
        ) from e


def _write_results(results: dict, output: Path, model: dict, model_type: str, plan: dict,
                   benchmarks: dict, suite_name: str, started: float) -> None:
    """lm-eval's results with the project's provenance, written whole onto `output`."""
    from obsscale.evaluation.code_tasks import SANDBOX_ENV

    results["config"]["model"] = model_type  # as simple_evaluate records a model given by name
    results.pop("samples", None)
    results["obsscale"] = {
        "model": {k: v for k, v in model.items() if not _is_nan(v)},
        "suite": plan,
        "suite_name": suite_name,
        "sandbox": os.environ.get(SANDBOX_ENV) if _uses_sandbox(benchmarks) else None,
        "task_hashes": {t: task_config_hash(c) for t, c in results.get("configs", {}).items()},
        "seconds": round(time.time() - started, 3),
        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    with atomic_path(output) as tmp:
        tmp.write_text(json.dumps(results, indent=2, sort_keys=True, default=str) + "\n")
    log.info("wrote %s in %.1f s", output, results["obsscale"]["seconds"])
