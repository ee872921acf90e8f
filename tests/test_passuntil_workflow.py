"""End to end on CPU: tiny random-weight models sampled through Snakemake to estimates, laws and
the five figures; plus the library functions the rules call, on simulated logs (fast)."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from obsscale.passuntil.backends import SimulatedBackend
from obsscale.figures.passuntil import FIGURES, render_figure
from obsscale.stages.passuntil import ESTIMATE_COLUMNS, LAW_COLUMNS, estimate_task, fit_laws
from obsscale.passuntil.sampling import pass_until
from obsscale.passuntil.tasks import PassUntilTask

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = Path(sys.executable).with_name("snakemake")


def test_estimate_law_and_figures_on_a_simulated_series(tmp_path):
    # A series that follows the law exactly per instance: PU recovered, the held-out model predicted.
    sizes = np.logspace(7, 9.5, 6)
    instances = [(9.0, 0.5), (9.5, 0.55), (8.5, 0.45), (9.2, 0.5)]
    logs, models = [], []
    for j, N in enumerate(sizes):
        ps = [np.exp(-np.exp(lc - a * np.log(N))) for lc, a in instances]
        task = PassUntilTask(name="sim", instances=[{"id": f"i{k}", "p": p} for k, p in enumerate(ps)],
                             prompt="{p}", checker_spec={"name": "regex", "pattern": "^1$"}, r=20,
                             K_max=200_000, batch={"initial": 64, "growth": 2, "max": 8192}, seed=j)
        path = tmp_path / f"m{j}.jsonl"
        pass_until(task, SimulatedBackend(), f"m{j}", path, progress=False)
        logs.append(str(path))
        models.append(f"m{j}")
    est_csv, summ_csv, law_csv = tmp_path / "estimates.csv", tmp_path / "summary.csv", tmp_path / "law.csv"
    estimate_task(logs, models, list(sizes), str(est_csv), str(summ_csv), n_boot=200)
    est = pd.read_csv(est_csv)
    assert list(est.columns) == ESTIMATE_COLUMNS and len(est) == 6 * 4
    curves_csv = tmp_path / "law_curves.csv"
    law = fit_laws(str(est_csv), str(summ_csv), str(law_csv), holdout=1, curves_csv=str(curves_csv))
    assert list(pd.read_csv(law_csv).columns) == LAW_COLUMNS
    task_row = law.set_index("level").loc["task"]
    inst_row = law.set_index("level").loc["instance"]
    # Per-instance laws are exact, so the instance-level prediction is close to the actual PU.
    assert inst_row["predicted"] == pytest.approx(task_row["actual"], rel=0.3)
    # The mean of instance laws is not itself one law, but close to one over this range.
    assert task_row["alpha"] > 0 and task_row["r2"] > 0.9
    assert task_row["predicted_low"] <= task_row["predicted"] <= task_row["predicted_high"]
    assert task_row["curvature_class"] in {"linear", "accelerated", "sub-scaling"}
    runs = [{"series": "sim", "task": "sim", "estimates": est_csv, "summary": summ_csv, "law": law_csv,
             "curves": curves_csv}]
    for name in FIGURES:
        out = tmp_path / name
        render_figure(name, runs, f"{out}.png", f"{out}.pdf", f"{out}.csv")
        assert Path(f"{out}.png").stat().st_size > 0 and len(pd.read_csv(f"{out}.csv")) > 0
    # The figures draw the law of law.csv (fitted without the largest model), not a refit on all.
    drawn = pd.read_csv(tmp_path / "passuntil_pu_vs_n.csv")
    law_line = drawn[drawn["kind"] == "law"]
    c, alpha = task_row["c"], task_row["alpha"]
    assert np.allclose(law_line["PU"], np.exp(-c * law_line["N"] ** -alpha), rtol=1e-6)
    observed = drawn[drawn["kind"].str.startswith("observed")]
    assert set(observed.loc[observed["N"] == sizes.max(), "kind"]) == {"observed_held_out"}


@pytest.mark.slow
def test_workflow_end_to_end_on_tiny_models(tmp_path):
    pytest.importorskip("torch")
    from support.tiny_models import build_tiny_causal_lm, count_parameters

    import transformers

    models = []
    for i, (hidden, layers) in enumerate([(8, 1), (16, 1), (24, 2), (32, 2)]):
        path = build_tiny_causal_lm(tmp_path / "models" / f"tiny{i}", hidden_size=hidden,
                                    num_layers=layers, num_heads=2, seed=i)
        N = count_parameters(transformers.AutoModelForCausalLM.from_pretrained(path), non_embedding=True)
        models.append({"name": f"tiny{i}", "path": str(path), "N": float(N)})
    work = tmp_path / "work"
    work.mkdir()
    for d in ("config", "resources"):
        (work / d).symlink_to(REPO / d)
    cfg = {"passuntil": {
        "enabled": True,
        "tasks": {"tiny_patterns": str(REPO / "config/passuntil/tasks/tiny_patterns.yaml")},
        "series": {"tiny": {"models": models}},
        # The default config's tasks merge into this one: name the run explicitly.
        "runs": [{"series": "tiny", "task": "tiny_patterns"}],
        "backend": {"name": "hf", "options": {"device": "cpu", "max_batch_size": 128}},
        "resources": {"threads": 1, "mem_mb": 2000, "runtime": 10},
        "bootstrap": {"n": 200, "level": 0.9, "seed": 0},
        "law": {"holdout": 1, "interval": 0.9},
    }}
    (work / "test.yaml").write_text(yaml.safe_dump(cfg))
    d = "results/passuntil/tiny/tiny_patterns"
    targets = [f"{d}/estimates.csv", f"{d}/law.csv"] + [
        f"results/figures/{name}.{ext}" for name in FIGURES for ext in ("png", "csv")]
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "HF_HUB_OFFLINE": "1",
           "HF_DATASETS_OFFLINE": "1"}
    proc = subprocess.run(
        [str(SNAKEMAKE), "-s", str(REPO / "Snakefile"), "-d", str(work), "--configfile",
         str(work / "test.yaml"), "--cores", "2", *targets],
        env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    est = pd.read_csv(work / d / "estimates.csv")
    assert list(est.columns) == ESTIMATE_COLUMNS
    assert set(est["model"]) == {m["name"] for m in models} and len(est) == 4 * 4
    assert est["passes"].sum() > 0
    law = pd.read_csv(work / d / "law.csv").set_index("level")
    assert set(law.index) >= {"task", "instance"}
    assert law.loc["task", "N_target"] == max(m["N"] for m in models)
    for m in models:
        assert (work / d / "samples" / f"{m['name']}.jsonl").stat().st_size > 0
    for name in FIGURES:
        assert (work / "results/figures" / f"{name}.png").stat().st_size > 0
    # A second run has nothing to do: outputs are complete and up to date.
    again = subprocess.run(
        [str(SNAKEMAKE), "-s", str(REPO / "Snakefile"), "-d", str(work), "--configfile",
         str(work / "test.yaml"), "--cores", "2", "-n", *targets],
        env=env, capture_output=True, text=True, timeout=300)
    assert "Nothing to be done" in again.stdout + again.stderr
