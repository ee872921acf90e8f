"""The evaluation stage end to end, offline: real lm-eval on real (tiny) checkpoints built on disk,
local task YAML, Snakemake from the model sheet to the wide score table; then its reliability
(kill -9 and resume, a failing model with --keep-going) and the response cache inside a job."""

from __future__ import annotations

import json
import math
import os
import shutil
import re
import signal
import stat
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("lm_eval")
pytest.importorskip("torch")

from conftest import SNAKEMAKE, make_workdir  # noqa: E402

from obsscale.core.io import current_umask  # noqa: E402
from obsscale.evaluation.harness import run_suite  # noqa: E402
from obsscale.evaluation.sheet import load_suites  # noqa: E402
from obsscale.evaluation.tables import META_COLUMNS  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TEST_CONFIG = "tests/eval/config.yaml"
SIZES = {"s": (16, 1), "m": (32, 2), "l": (64, 2)}  # hidden size, layers
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def make_eval_workdir(path: Path, models=("s", "m", "l")) -> Path:
    """The shared test workdir (config, shipped data) plus the test sheet, suites and local tasks,
    with tiny models built in it; results stay out of the repository."""
    from support.tiny_models import build_tiny_causal_lm

    work = make_workdir(path)
    shutil.copytree(ROOT / "tests/eval", work / "tests/eval")
    shutil.copytree(ROOT / "tests/eval_tasks", work / "tests/eval_tasks")
    for name in models:
        hidden, layers = SIZES[name]
        build_tiny_causal_lm(work / "tiny_models" / name, hidden_size=hidden, num_layers=layers, num_heads=2)
    return work


def snakemake_cmd(work: Path, *args: str) -> list[str]:
    # One core: jobs run one after another, so a kill lands inside a known job.
    return [*SNAKEMAKE, "-s", str(ROOT / "Snakefile"), "--directory", str(work), "--cores", "1",
            "--configfile", TEST_CONFIG, *args]


def run_eval(work: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(snakemake_cmd(work, *args), cwd=work, capture_output=True, text=True)


@pytest.mark.slow
def test_sheet_to_wide_table_survives_kill_9(tmp_path):
    work = make_eval_workdir(tmp_path / "work")
    runs = work / "results/eval/runs"
    # Start the workflow and kill it (SIGKILL, whole process group) as soon as one job finished:
    # the next job is then loading its model or evaluating.
    out = open(tmp_path / "first_run.log", "w")
    proc = subprocess.Popen(
        snakemake_cmd(work, "--until", "eval_aggregate"), cwd=work, start_new_session=True,
        stdout=out, stderr=subprocess.STDOUT,
    )
    # Wait until Snakemake has recorded one finished job (its file renamed into place and its
    # metadata written), then kill inside the next job, which spends ~20 s loading and evaluating.
    deadline = time.time() + 300
    while time.time() < deadline and "Finished jobid" not in (tmp_path / "first_run.log").read_text():
        assert proc.poll() is None, (tmp_path / "first_run.log").read_text()[-3000:]
        time.sleep(0.2)
    assert list(runs.glob("*/tiny.json")), "no evaluation job finished within 300 s"
    time.sleep(2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    out.close()
    done_before = {p: p.stat().st_mtime_ns for p in runs.glob("*/tiny.json")}
    assert len(done_before) < 3, "the kill came too late to interrupt a job"
    for p in done_before:  # whatever exists is complete: it parses and has results
        assert json.loads(p.read_text())["results"]

    unlock = run_eval(work, "--unlock")
    assert unlock.returncode == 0, unlock.stderr
    rerun = run_eval(work, "--until", "eval_aggregate")
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    for p, mtime in done_before.items():  # finished jobs are not redone
        assert p.stat().st_mtime_ns == mtime
    assert not list(runs.glob("*/.tiny.json.*.tmp")), "a temporary file of the killed job remains"

    # The wide table: exactly the shipped table's metadata columns, then the suite's columns.
    suite = load_suites(work / "tests/eval/suites.yaml", ROOT / "workflow/schemas/suites.schema.yaml")["tiny"]
    wide = pd.read_csv(work / "results/eval/tiny/scores_wide.csv")
    assert list(wide.columns) == META_COLUMNS + list(suite["benchmarks"])
    imported = pd.read_csv(work / "tests/eval/imported_scores.csv")
    assert sorted(wide["Model"]) == sorted({"tiny-s", "tiny-m", "tiny-l", *imported["Model"]})
    wide = wide.set_index("Model")
    published = imported.set_index("Model")
    for model in published.index.difference(["tiny-m"]):  # imported rows come through as published
        assert wide.loc[model, "AddMC"] == published.loc[model, "AddMC"]
    assert math.isnan(wide.loc["tiny-l", "FLOPs (1E21)"])  # no data size: a row, without FLOPs
    assert wide.loc["tiny-s", "FLOPs (1E21)"] == pytest.approx(6 * 0.00002 * 0.001)
    metrics = wide[list(suite["benchmarks"])]
    assert ((metrics >= 0) & (metrics <= 1)).all().all()

    tidy = pd.read_csv(work / "results/eval/tiny/scores_tidy.csv")
    assert set(tidy["source"]) == {"run", "imported"}
    assert (tidy.loc[tidy["source"] == "run", "harness_version"] == "0.4.13").all()
    # tiny-m has both a run and a published value: the config prefers the run.
    both = tidy[(tidy["model"] == "tiny-m") & (tidy["benchmark"] == "AddMC")].set_index("source")["value"]
    assert wide.loc["tiny-m", "AddMC"] == both["run"] != both["imported"]
    for model in ("s", "m", "l"):
        data = json.loads((runs / f"tiny-{model}/tiny.json").read_text())
        res = data["results"]
        # The wide table holds what lm-eval reported: one task read two ways, a group by its mean.
        assert wide.loc[f"tiny-{model}", "AddMC"] == pytest.approx(res["add_mc_en"]["acc_norm,none"])
        assert wide.loc[f"tiny-{model}", "AddMCAcc"] == pytest.approx(res["add_mc_en"]["acc,none"])
        group = [res[t]["acc,none"] for t in ("add_mc_fr", "add_mc_de")]
        assert wide.loc[f"tiny-{model}", "AddMCGroup"] == pytest.approx(sum(group) / 2)
        assert data["n-shot"]["add_mc_en"] == 2 and data["n-shot"]["add_mc_fr"] == 1
        assert data["config"]["model_args"]["pretrained"] == f"tiny_models/{model}"
        assert data["obsscale"]["task_hashes"]["add_gen"]
        # One model load for all four lm-eval tasks of the suite.
        log = (work / f"logs/eval/tiny-{model}/tiny.log").read_text()
        assert log.count("loading hf model") == 1
        # Progress in the job's log: requests done / total, rate and ETA.
        assert re.search(r"loglikelihood requests: \d+/\d+ requests \(100%\), [0-9.e+]+ requests/s, "
                         r"elapsed [0-9:]+, ETA", log), log[-2000:]
        assert "generate_until requests: 0/" in log
        # Readable by collaborators: the mode of a new file under the run's umask (0644 under 022).
        assert stat.S_IMODE((runs / f"tiny-{model}/tiny.json").stat().st_mode) == 0o666 & ~current_umask()
    nothing = run_eval(work, "--until", "eval_aggregate", "-n")
    assert nothing.returncode == 0 and "eval_run" not in nothing.stdout + nothing.stderr

    # The evaluated table feeds the analyses: capability space and per-family laws on it.
    pca_targets = ["results/pca/evaluated/scores.csv", "results/family_laws/evaluated/pc_vs_log10_flops.csv"]
    analysed = subprocess.run([*SNAKEMAKE, "-s", str(ROOT / "Snakefile"), "--directory", str(work), *pca_targets,
                               "--cores", "1", "--configfile", TEST_CONFIG], cwd=work, capture_output=True, text=True)
    assert analysed.returncode == 0, analysed.stderr[-3000:]
    assert "rule eval_run" not in analysed.stdout + analysed.stderr  # nothing re-evaluated
    pcs = pd.read_csv(work / "results/pca/evaluated/scores.csv").set_index("Model")
    assert set(pcs.index) == set(wide.index)  # every model gets PC scores, FLOPs or not
    assert pcs[["PC-1", "PC-2"]].notna().all().all()
    assert math.isnan(pcs.loc["tiny-l", "FLOPs (1E21)"])
    laws = pd.read_csv(work / "results/family_laws/evaluated/pc_vs_log10_flops.csv")
    assert set(laws["family"]) <= {"TinyLlama-test", "TinyGPT-test"} and len(laws) >= 2


@pytest.mark.slow
def test_a_missing_model_folder_stops_the_run_before_any_job(tmp_path):
    work = make_eval_workdir(tmp_path / "work", models=("s",))
    sheet = work / "tests/eval/models.tsv"
    lines = sheet.read_text().splitlines()
    good = [line for line in lines if line.startswith(("model\t", "tiny_models/s\t"))]
    missing = lines[1].replace("tiny_models/s", "./tiny_models/missing").replace("tiny-s", "tiny-missing")
    sheet.write_text("\n".join(good + [missing]) + "\n")

    proc = run_eval(work, "--keep-going", "--until", "eval_aggregate")
    assert proc.returncode != 0
    # The sheet is checked when the workflow is read: one line naming the row, no job, no result.
    error = proc.stderr.strip().splitlines()[-1]
    assert error.startswith("Error: tests/eval/models.tsv: row 3, field 'model'"), error
    assert "no model folder './tiny_models/missing'" in error
    assert not (work / "results").exists()


@pytest.mark.slow
def test_response_cache_resumes_inside_a_job(tmp_path, monkeypatch):
    """A re-run with the cache of an interrupted run answers finished requests without the model."""
    from lm_eval.models.huggingface import HFLM

    from support.tiny_models import build_tiny_causal_lm

    model_dir = build_tiny_causal_lm(tmp_path / "m", hidden_size=16, num_layers=1, num_heads=2)
    suite = load_suites(ROOT / "tests/eval/suites.yaml", ROOT / "workflow/schemas/suites.schema.yaml")["tiny"]
    model = {"name": "m", "model": str(model_dir), "dtype": "float32", "backend": "hf", "batch_size": "4"}
    kwargs = dict(cache_dir=tmp_path / "cache", include_paths=[str(ROOT / "tests/eval_tasks")], limit=6,
                  bootstrap_iters=0)
    monkeypatch.chdir(ROOT)  # the tiny tasks' data paths are relative to the repository root
    first = run_suite(model, suite, tmp_path / "first.json", **kwargs)

    def no_model(*args, **kw):
        raise AssertionError("the model was asked although the cache holds the answer")

    monkeypatch.setattr(HFLM, "_loglikelihood_tokens", no_model)
    monkeypatch.setattr(HFLM, "generate_until", no_model)
    second = run_suite(model, suite, tmp_path / "second.json", **kwargs)
    for task in ("add_mc_en", "add_mc_fr", "add_gen"):
        assert first["results"][task] == second["results"][task]


def _vllm_skip_reason() -> str | None:
    import importlib.util

    import torch

    if not torch.cuda.is_available():
        return "the vLLM backend needs a CUDA device; none is present"
    if importlib.util.find_spec("vllm") is None:
        return "the vLLM backend needs the optional vllm package (pip install -r requirements-gpu.txt)"
    return None


@pytest.mark.gpu
@pytest.mark.slow
def test_vllm_backend_matches_the_sheet_row(tmp_path, monkeypatch):
    reason = _vllm_skip_reason()
    if reason:
        pytest.skip(reason)
    from support.tiny_models import build_tiny_causal_lm

    model_dir = build_tiny_causal_lm(tmp_path / "m", hidden_size=64, num_layers=2, num_heads=2)
    suite = load_suites(ROOT / "tests/eval/suites.yaml", ROOT / "workflow/schemas/suites.schema.yaml")["tiny"]
    model = {"name": "m", "model": str(model_dir), "dtype": "float32", "backend": "vllm", "gpus": 1,
             "batch_size": "auto", "model_args": "gpu_memory_utilization=0.3"}
    monkeypatch.chdir(ROOT)
    start = time.perf_counter()
    out = run_suite(model, suite, tmp_path / "vllm.json", tmp_path / "cache",
                    include_paths=[str(ROOT / "tests/eval_tasks")], bootstrap_iters=0)
    print(f"vLLM: tiny suite in {time.perf_counter() - start:.1f} s")
    assert out["config"]["model"] == "vllm"
    assert 0 <= out["results"]["add_mc_en"]["acc,none"] <= 1
