"""Model loads and wall time: one lm-eval call per (model, suite) against one call per task.

Each call runs as its own process, as a Snakemake job does, on a tiny model built on disk and the
tiny local tasks of tests/eval_tasks (offline).  Prints both layouts side by side:

    PYTHONPATH=src python bench/eval_loads.py [--tasks 4] [--hidden 64] [--limit 8]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # tests/support: the tiny on-disk models
BENCHMARKS = {
    "AddMCEn": {"task": "add_mc_en", "num_fewshot": 2, "metric": "acc"},
    "AddMCFr": {"task": "add_mc_fr", "num_fewshot": 2, "metric": "acc"},
    "AddMCDe": {"task": "add_mc_de", "num_fewshot": 2, "metric": "acc"},
    "AddGen": {"task": "add_gen", "num_fewshot": 1, "metric": "exact_match", "filter": "strict-match"},
}
JOB = """
import json, sys
from obsscale.core.io import setup_logging
setup_logging()
from obsscale.evaluation.harness import run_suite
model, suite, out, cache, limit = json.loads(sys.argv[1])
run_suite(model, suite, out, cache, include_paths=["tests/eval_tasks"], limit=limit, bootstrap_iters=0)
"""


def job(model: dict, benchmarks: dict, out: Path, cache: Path, limit: int) -> tuple[float, int]:
    """Run one evaluation job in a fresh process; return its wall time and its model loads."""
    import json

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "PYTHONPATH": str(ROOT / "src")}
    args = json.dumps([model, {"benchmarks": benchmarks}, str(out), str(cache), limit])
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", JOB, args], cwd=ROOT, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(proc.stderr[-3000:])
    return elapsed, proc.stderr.count("Initializing hf model")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=len(BENCHMARKS), choices=range(1, len(BENCHMARKS) + 1))
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--limit", type=int, default=8)
    args = parser.parse_args()

    from support.tiny_models import build_tiny_causal_lm

    benchmarks = dict(list(BENCHMARKS.items())[: args.tasks])
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        path = build_tiny_causal_lm(tmp / "model", hidden_size=args.hidden, num_layers=args.layers, num_heads=2)
        model = {"name": "bench", "model": str(path), "dtype": "float32", "backend": "hf", "batch_size": "8"}

        suite_time, suite_loads = job(model, benchmarks, tmp / "suite.json", tmp / "cache-suite", args.limit)
        per_task = [
            job(model, {c: b}, tmp / f"{c}.json", tmp / f"cache-{c}", args.limit) for c, b in benchmarks.items()
        ]
    task_time = sum(t for t, _ in per_task)
    task_loads = sum(n for _, n in per_task)
    print(f"{len(benchmarks)} tasks, tiny model (hidden {args.hidden}, {args.layers} layers), {args.limit} docs/task")
    print(f"{'layout':<28}{'jobs':>6}{'model loads':>13}{'wall s':>10}")
    print(f"{'one call per (model, suite)':<28}{1:>6}{suite_loads:>13}{suite_time:>10.1f}")
    print(f"{'one call per task':<28}{len(per_task):>6}{task_loads:>13}{task_time:>10.1f}")
    print(f"time saved: {task_time - suite_time:.1f} s ({task_time / suite_time:.2f}x faster per model)")


if __name__ == "__main__":
    main()
