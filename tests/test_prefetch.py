"""`obsscale prefetch`: what a run would read from the hub, fetched beforehand for offline nodes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from obsscale.stages import prefetch as pf

ROOT = Path(__file__).resolve().parents[1]


def test_hub_ids_are_told_from_folders(tmp_path):
    (tmp_path / "org" / "local").mkdir(parents=True)
    assert pf.is_hub_id("meta-llama/Llama-2-7b-hf", tmp_path)
    assert not pf.is_hub_id("org/local", tmp_path)  # a folder of that name
    for local in ("results/ladder/models/m1", "./tiny", "/abs/model", "a/b/c", "plain"):
        assert not pf.is_hub_id(local, tmp_path)


def test_dry_run_lists_the_examples_models_and_tasks():
    cmd = [sys.executable, "-m", "obsscale.cli", "prefetch", "--dry-run", "--configfile",
           "config/evaluation-example.yaml", "config/passuntil/example.yaml"]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120,
                         env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert "model meta-llama/Llama-2-7b-hf (revision main)" in lines
    assert "model EleutherAI/pythia-70m (revision default)" in lines  # PassUntil series
    assert "lm-eval task mmlu" in lines and "lm-eval task arithmetic_2da" in lines
    assert "lm-eval task humaneval" not in lines  # runs only with allow_code_execution
    assert "PassUntil task config/passuntil/tasks/date_mini.yaml" in lines


def test_prefetch_loads_every_task_and_downloads_each_model_once(monkeypatch, tmp_path):
    pytest.importorskip("lm_eval")
    config = pf.load_run_config([ROOT / "tests/eval/config.yaml"], ROOT)
    config["evaluation"]["model_sheet"] = str(tmp_path / "sheet.tsv")
    # Two rows of one model (two names), and a local folder, which is not fetched.
    (tmp_path / "sheet.tsv").write_text(
        "model\tname\tfamily\trevision\n"
        "org/model-a\ta1\tTinyLlama-test\tv1\n"
        "org/model-a\ta2\tTinyLlama-test\tv1\n"
        "./tiny_models/s\ts\tTinyLlama-test\t\n"
    )
    monkeypatch.chdir(ROOT)  # the tiny tasks' data paths are relative to the repository root
    todo = pf.fetch_list(config, ROOT)
    assert todo.models == [("org/model-a", "v1")]
    assert set(todo.lm_eval_tasks) == {"add_mc_en", "add_mc", "add_gen"}
    fetched = []
    monkeypatch.setattr(pf, "_download_model", lambda repo, rev: fetched.append((repo, rev)) or "cache")
    said = []
    pf.prefetch(todo, say=said.append)
    assert fetched == [("org/model-a", "v1")]
    assert [s for s in said if s.startswith("lm-eval task")] == [f"lm-eval task {t}" for t in todo.lm_eval_tasks]
