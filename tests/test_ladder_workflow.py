"""The smoke ladder end to end through Snakemake: corpus and held-out tasks, three trained models,
their model sheet, lm-eval on the held-out tasks, the capability space and PassUntil."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest
import yaml
from conftest import ROOT, make_workdir, run_snakemake

from obsscale.passuntil.rounds import all_samples_estimate

CONFIG = "tests/ladder/config.yaml"


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    workdir = make_workdir(tmp_path_factory.mktemp("ladder"))
    shutil.copytree(ROOT / "tests" / "ladder", workdir / "tests" / "ladder")
    run_snakemake(workdir, "--configfile", CONFIG, timeout=1200)
    return workdir


@pytest.mark.slow
def test_smoke_ladder_end_to_end(smoke_run):
    work = smoke_run
    sheet = pd.read_csv(work / "results/ladder/models.tsv", sep="\t", comment="#")
    assert sheet["name"].tolist() == ["smoke-d8", "smoke-d16", "smoke-d32"]
    assert sheet["params_b"].is_monotonic_increasing
    for _, row in sheet.iterrows():
        record = json.loads((work / row["model"] / "obsscale_model.json").read_text())
        assert record["training_tokens"] == 60 * 8 * 32
        flops = 6 * record["non_embedding_parameters"] * record["training_tokens"]
        assert row["flops_1e21"] == pytest.approx(flops / 1e21, rel=1e-5)
        assert not (work / f"results/ladder/checkpoints/{row['name']}.pt").exists()

    # The held-out problems are not in the training corpus.
    corpus = set((work / "results/ladder/corpus.txt").read_text().splitlines())
    for task in ("ladder_add2", "ladder_rev4"):
        rows = [json.loads(line) for line in open(work / f"results/ladder/tasks/data/{task}.jsonl")]
        assert rows and not any(r["prompt"] + r["answer"] in corpus for r in rows)

    wide = pd.read_csv(work / "results/eval/ladder/scores_wide.csv")
    assert wide["Model"].tolist() == sheet["name"].tolist()
    for column in ("Add2-Gen", "Add2-MC", "Rev4-Gen", "Rev4-MC"):
        assert wide[column].between(0, 1).all(), column
    assert (work / "results/pca/ladder/scores.csv").exists()

    design = yaml.safe_load((ROOT / CONFIG).read_text())["ladder"]["held_out"]["passuntil"]
    for task in ("ladder_add2", "ladder_rev4"):
        summary = pd.read_csv(work / f"results/passuntil/ladder/{task}/summary.csv")
        assert summary["model"].tolist() == sheet["name"].tolist()
        assert summary["greedy"].between(0, 1).all()
        law = pd.read_csv(work / f"results/passuntil/ladder/{task}/law.csv")
        assert law["N_target"].iloc[0] == pytest.approx(16480)  # the largest model is held out
        # estimator all_samples: every drawn sample, the rest of the last round included.
        est = pd.read_csv(work / f"results/passuntil/ladder/{task}/estimates.csv")
        assert (est["drawn"] >= est["K"]).all() and (est["passes_drawn"] >= est["passes"]).all()
        expected = all_samples_estimate(est["drawn"], est["passes_drawn"], int(est["r"].iloc[0]),
                                        int(est["K_max"].iloc[0]), design["batch"])
        assert est["p_hat"].to_numpy() == pytest.approx(expected)
    assert (work / "results/figures/passuntil_resolution.png").exists()


@pytest.mark.slow
def test_smoke_ladder_rerun_is_a_no_op(smoke_run):
    proc = run_snakemake(smoke_run, "--configfile", CONFIG, "-n")
    assert "Nothing to be done" in proc.stdout + proc.stderr


@pytest.mark.slow
def test_killed_training_job_resumes_to_the_same_weights(tmp_path):
    """kill -9 of the whole Snakemake run mid-training; the rerun resumes from the checkpoint and
    ends with the weights of a training that was never interrupted."""
    import os
    import signal
    import subprocess
    import sys
    import time

    import yaml
    from safetensors.torch import load_file

    work = make_workdir(tmp_path / "work")
    shutil.copytree(ROOT / "tests" / "ladder", work / "tests" / "ladder")
    cfg = yaml.safe_load((work / CONFIG).read_text())
    cfg["ladder"]["training"].update(steps=400, checkpoint_every=25)
    (work / CONFIG).write_text(yaml.safe_dump(cfg))
    target = "results/ladder/models/smoke-d32"
    checkpoint = work / "results/ladder/checkpoints/smoke-d32.pt"
    cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--cores", "1",
           target, "--configfile", CONFIG]
    proc = subprocess.Popen(cmd, cwd=work, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 600
    while not checkpoint.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    assert proc.poll() is None, f"the run ended before it was killed:\n{proc.stdout.read()[-3000:]}"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert checkpoint.exists(), "no checkpoint was written before the kill"
    assert not (work / target).exists()

    run_snakemake(work, "--unlock", "--configfile", CONFIG)  # the killed run left its lock
    run_snakemake(work, target, "--rerun-incomplete", "--configfile", CONFIG)
    log = (work / "logs/ladder/train_smoke-d32.log").read_text()
    assert "resumed from" in log
    resumed = load_file(str(work / target / "model.safetensors"))

    run_snakemake(work, target, "--forcerun", "ladder_train", "--configfile", CONFIG)
    assert "resumed from" not in (work / "logs/ladder/train_smoke-d32.log").read_text()
    straight = load_file(str(work / target / "model.safetensors"))
    assert all(resumed[k].equal(straight[k]) for k in straight)
