"""Prediction end to end through Snakemake, offline: a tiny checkpoint built on disk → the evaluation
stage (lm-eval on local tasks) → its score table → a law fitted on published models and frozen →
results/predictions/ with a band for the evaluated model, which has no target value."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("lm_eval")
pytest.importorskip("torch")

from conftest import SNAKEMAKE  # noqa: E402
from test_evaluation_workflow import make_eval_workdir  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_tiny_model_to_a_prediction_with_a_band(tmp_path):
    work = make_eval_workdir(tmp_path / "work", models=("s",))
    sheet = work / "tests/eval/models.tsv"
    lines = sheet.read_text().splitlines()
    sheet.write_text("\n".join(line for line in lines if line.startswith(("model\t", "tiny_models/s\t"))) + "\n")
    target = "results/predictions/tiny.csv"
    proc = subprocess.run([*SNAKEMAKE, "-s", str(ROOT / "Snakefile"), "--directory", str(work), target,
                           "--cores", "1", "--configfile", "tests/eval/config.yaml", "tests/eval/predict.yaml"],
                          cwd=work, capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stderr[-4000:]
    for rule in ("eval_run", "eval_aggregate", "fit_experiments", "predict"):
        assert f"rule {rule}" in proc.stdout + proc.stderr

    pred = pd.read_csv(work / target)
    assert list(pred["model"]) == ["tiny-s"]  # the evaluated model only, by every law of the set
    row = pred.iloc[0]
    assert row["law"] == "tiny_task/tiny_task/PC-1" and row["law_status"] == "ok"
    assert row["band_method"] == "bootstrap"
    assert np.isfinite([row["y_hat"], row["band_lo"], row["band_hi"], row["capability_index"],
                        row["log10_equivalent_flops"], row["PC-1"]]).all()
    assert 0 <= row["band_lo"] <= row["band_hi"] <= 1
    assert row["reference_family"] == "TinyLlama-test"
    # the model's scores came from the run, and tiny-s is not in the fit
    wide = pd.read_csv(work / "results/eval/tiny/scores_wide.csv").set_index("Model")
    assert "tiny-s" in wide.index
    fits = pd.read_csv(work / "results/fits/tiny_task/predictions.csv")
    assert "tiny-s" not in set(fits["Model"])
    # the figure, with its CSV, places the model on the law's curve
    fig = pd.read_csv(work / "results/figures/predictions_tiny.csv")
    placed = fig[fig["kind"] == "predicted"]
    assert list(placed["model"]) == ["tiny-s"] and placed["y"].iloc[0] == pytest.approx(row["y_hat"])
    for ext in ("png", "csv"):
        assert (work / f"results/figures/predictions_tiny.{ext}").stat().st_size > 0
    # the CLI on the evaluation stage's table gives the same row
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    cli = subprocess.run([sys.executable, "-m", "obsscale.cli", "predict", "results/eval/tiny/scores_wide.csv",
                          "--laws", "results/prereg/tiny_task.json", "--out", "cli.csv"],
                         cwd=work, capture_output=True, text=True, env=env)
    assert cli.returncode == 0, cli.stderr
    mine = pd.read_csv(work / "cli.csv").set_index("model").loc["tiny-s"]
    for col in ("y_hat", "band_lo", "band_hi", "capability_index"):
        assert mine[col] == pytest.approx(row[col], abs=1e-12)
