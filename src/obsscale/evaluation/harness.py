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

import csv
import glob
import hashlib
import json
import logging
import math
import os
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from obsscale.core.errors import InputError
from obsscale.core.io import atomic_path, write_csv
from obsscale.stages.cluster import default_threads

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
SHEET_DEFAULTS: dict[str, Any] = {
    "name": "",
    "revision": "",
    "params_b": None,
    "tokens_t": None,
    "flops_1e21": None,
    "compute_source": "",
    "type": "base",
    "backend": "hf",
    "dtype": "auto",
    "batch_size": "1",
    "gpus": 0,
    "gpu_model": "",
    "threads": None,
    "mem_gb": None,
    "runtime_min": None,
    "suites": "",
    "model_args": "",
}
NUMERIC_FIELDS = ("params_b", "tokens_t", "flops_1e21", "mem_gb", "runtime_min")
INTEGER_FIELDS = ("gpus", "threads")


class EvaluationConfigError(InputError):
    """A model sheet or suite file is malformed: the message names the file, row and field."""


# --------------------------------------------------------------------------------------------
# Model sheet


def model_slug(name: str) -> str:
    """A file-name-safe key of a model (hub ids contain '/'); used in result paths."""
    slug = name.strip().replace("/", "__")
    return "".join(c if c.isalnum() or c in "._-" else "-" for c in slug)


def _load_schema(path: str | os.PathLike) -> dict:
    return yaml.safe_load(Path(path).read_text())


def _coerce(value: str, field: str, file: str, row: int) -> Any:
    """Cells of a TSV are strings; turn numeric fields into numbers, empty cells into None."""
    value = value.strip()
    if value == "" or value.upper() in ("NA", "NAN"):
        return None
    if field in NUMERIC_FIELDS:
        try:
            return float(value)
        except ValueError:
            raise EvaluationConfigError(
                f"{file}: row {row}, field '{field}': '{value}' is not a number"
            ) from None
    if field in INTEGER_FIELDS:
        try:
            return int(value)
        except ValueError:
            raise EvaluationConfigError(
                f"{file}: row {row}, field '{field}': '{value}' is not an integer"
            ) from None
    return value


def _schema_error(file: str, where: str, err) -> EvaluationConfigError:
    field = ".".join(str(p) for p in err.absolute_path) or "(row)"
    if err.validator == "required":
        return EvaluationConfigError(f"{file}: {where}: {err.message}")
    if err.validator == "additionalProperties":
        return EvaluationConfigError(f"{file}: {where}: {err.message}")
    return EvaluationConfigError(f"{file}: {where}, field '{field}': {err.message}")


def load_model_sheet(path: str | os.PathLike, schema_path: str | os.PathLike) -> pd.DataFrame:
    """Read and validate the model sheet; fill defaults, `Model` names, slugs and 6·N·D FLOPs.

    Rows are numbered by their line in the file (the header is row 1 unless comments precede it).
    """
    import jsonschema

    file = str(path)
    schema = _load_schema(schema_path)
    validator = jsonschema.Draft202012Validator(schema)
    with open(path, newline="") as f:
        # Rows are named by their line in the file (comment and blank lines count), as an editor shows.
        numbered = [
            (n, line) for n, line in enumerate(f, start=1) if line.strip() and not line.lstrip().startswith("#")
        ]
    if not numbered:
        raise EvaluationConfigError(f"{file}: the model sheet is empty (no header row)")
    header_line, header_text = numbered[0]
    header = [h.strip() for h in next(csv.reader([header_text], delimiter="\t"))]
    known = set(schema["properties"])
    for h in header:
        if h not in known:
            raise EvaluationConfigError(
                f"{file}: row {header_line}: unknown column '{h}' (known columns: {', '.join(sorted(known))})"
            )
    rows = []
    for i, text in numbered[1:]:
        cells = next(csv.reader([text.rstrip("\r\n")], delimiter="\t"))
        if len(cells) != len(header):
            raise EvaluationConfigError(
                f"{file}: row {i}: {len(cells)} tab-separated cells, the header has {len(header)}"
            )
        record = {h: _coerce(c, h, file, i) for h, c in zip(header, cells)}
        record = {k: v for k, v in record.items() if v is not None}
        errors = sorted(validator.iter_errors(record), key=lambda e: list(e.absolute_path))
        if errors:
            raise _schema_error(file, f"row {i}", errors[0])
        full = {**SHEET_DEFAULTS, **record}
        full["name"] = full["name"] or full["model"]
        full["slug"] = model_slug(full["name"])
        if full["flops_1e21"] is None and full["params_b"] is not None and full["tokens_t"] is not None:
            # C ≈ 6·N·D; with N in billions and D in trillions the product is in units of 1e21.
            full["flops_1e21"] = float(f"{6.0 * full['params_b'] * full['tokens_t']:.12g}")
        full["row"] = i
        rows.append(full)
    if not rows:
        raise EvaluationConfigError(f"{file}: the model sheet lists no models")
    seen: dict[str, int] = {}
    for r in rows:
        if r["slug"] in seen:
            raise EvaluationConfigError(
                f"{file}: row {r['row']}, field 'name': '{r['name']}' repeats row {seen[r['slug']]}"
                " (give each model a distinct name)"
            )
        seen[r["slug"]] = r["row"]
    return pd.DataFrame(rows).set_index("slug", drop=False)


def check_families(sheet: pd.DataFrame, families_path: str | os.PathLike, file: str = "model sheet") -> None:
    """Every model's family must be one the analyses know (families YAML), else its row is named."""
    from obsscale.capability.scores import load_families

    known = set(load_families(families_path).known_families)
    for _, r in sheet.iterrows():
        if r["family"] not in known:
            raise EvaluationConfigError(
                f"{file}: row {r['row']}, field 'family': '{r['family']}' is not a family of "
                f"{families_path}"
            )


# --------------------------------------------------------------------------------------------
# Suites


def load_suites(path: str | os.PathLike, schema_path: str | os.PathLike) -> dict[str, dict]:
    """Read and validate a suites file: `suites: {NAME: {benchmarks: {COLUMN: {task, ...}}}}`."""
    import jsonschema

    file = str(path)
    try:
        data = yaml.safe_load(Path(path).read_text())
    except yaml.YAMLError as e:
        raise EvaluationConfigError(f"{file}: not valid YAML: {e}") from None
    if not isinstance(data, dict) or not isinstance(data.get("suites"), dict):
        raise EvaluationConfigError(f"{file}: top level must be a mapping with a 'suites:' key")
    schema = _load_schema(schema_path)
    validator = jsonschema.Draft202012Validator(schema)
    suites = {}
    for name, suite in data["suites"].items():
        errors = sorted(validator.iter_errors(suite), key=lambda e: list(e.absolute_path))
        if errors:
            err = errors[0]
            parts = [str(p) for p in err.absolute_path]
            if len(parts) >= 2 and parts[0] == "benchmarks":
                where = f"suite '{name}', benchmark '{parts[1]}'"
                field = ".".join(parts[2:])
            else:
                where = f"suite '{name}'"
                field = ".".join(parts)
            if err.validator in ("required", "additionalProperties") or not field:
                raise EvaluationConfigError(f"{file}: {where}: {err.message}")
            raise EvaluationConfigError(f"{file}: {where}, field '{field}': {err.message}")
        suites[name] = suite
    return suites


def runnable_benchmarks(suite: dict, allow_code_execution: bool) -> dict[str, dict]:
    """The suite's benchmarks that will run: code-execution ones only with the explicit opt-in."""
    out = {}
    for column, bench in suite["benchmarks"].items():
        if bench.get("unsafe_code", False) and not allow_code_execution:
            log.warning(
                "skipping %s (%s): it executes model-generated code; set "
                "evaluation.allow_code_execution: true to run it",
                column,
                bench["task"],
            )
            continue
        out[column] = bench
    return out


def model_suites(row: dict, default_suites: list[str]) -> list[str]:
    """Suites to run for one model: the sheet's `suites` cell (comma-separated) or the default."""
    cell = str(row.get("suites") or "").strip()
    return [s.strip() for s in cell.split(",") if s.strip()] if cell else list(default_suites)


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
    import lm_eval
    from lm_eval.tasks import TaskManager

    from obsscale.evaluation.code_tasks import SANDBOX_ENV, SANDBOXED_TASKS, TASKS_DIR

    output = Path(output)
    _remove_stale_temporaries(output)
    benchmarks = runnable_benchmarks(suite, allow_code_execution)
    if not benchmarks:
        raise EvaluationConfigError(
            "no benchmark of the suite can run (all execute code and allow_code_execution is false)"
        )
    if allow_code_execution and any(b.get("unsafe_code") for b in benchmarks.values()):
        # HF `evaluate`'s code_eval metric refuses to execute generated code without this.
        os.environ["HF_ALLOW_CODE_EVAL"] = "1"
    if any(b["task"] in SANDBOXED_TASKS for b in benchmarks.values()):
        from obsscale.passuntil.sandbox import check_mode, isolation

        mode = check_mode(sandbox)
        os.environ[SANDBOX_ENV] = mode
        log.info("generated code is judged in the %s sandbox: %s", mode, isolation(mode)["layers"])
    _check_model_exists(model)
    model_type, model_args = lm_eval_model(model)

    if model_type == "hf":
        import torch

        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if threads:
            torch.set_num_threads(int(threads))
    include_paths = [str(Path(p).resolve()) for p in include_paths or []] + [str(TASKS_DIR)]
    started = time.time()
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
        for task in loaded["tasks"].values():
            if bench.get("num_fewshot") is not None:
                task.set_config(key="num_fewshot", value=bench["num_fewshot"])
            if bench.get("generation_kwargs"):
                task.set_config(key="generation_kwargs", value=dict(bench["generation_kwargs"]), update=True)
        top = [g for name, g in loaded["groups"].items() if name == bench["task"]]
        task_objects.extend(top or list(loaded["tasks"].values()))
        loaded_by_task[bench["task"]] = (settings, leaves, column)
        plan[column] = {**bench, "leaf_tasks": leaves}

    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    cache_prefix = str(cache_dir / _cache_key(model_type, model_args))
    log.info(
        "evaluating %s (%s, %s) on %d benchmarks (%d lm-eval tasks) in one call; cache %s",
        model["name"],
        model_type,
        model_args,
        len(plan),
        sum(len(p["leaf_tasks"]) for p in plan.values()),
        cache_prefix,
    )
    try:
        lm = _load_model(model_type, model_args, model.get("batch_size") or 1, device, progress_interval)
        results = lm_eval.simple_evaluate(
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
    if results is None:  # non-zero rank of a distributed run: rank 0 writes the file
        return {}
    results["config"]["model"] = model_type  # as simple_evaluate records a model given by name
    results.pop("samples", None)
    results["obsscale"] = {
        "model": {k: v for k, v in model.items() if not _is_nan(v)},
        "suite": plan,
        "suite_name": suite_name,
        "sandbox": os.environ.get(SANDBOX_ENV) if any(
            b["task"] in SANDBOXED_TASKS for b in benchmarks.values()) else None,
        "task_hashes": {t: task_config_hash(c) for t, c in results.get("configs", {}).items()},
        "seconds": round(time.time() - started, 3),
        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    with atomic_path(output) as tmp:
        tmp.write_text(json.dumps(results, indent=2, sort_keys=True, default=str) + "\n")
    log.info("wrote %s in %.1f s", output, results["obsscale"]["seconds"])
    return results


def _is_nan(v: Any) -> bool:
    return isinstance(v, float) and math.isnan(v)


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
