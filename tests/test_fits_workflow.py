"""End to end through Snakemake: the default reproduction plus a user's own experiment added by a
CSV and a config block alone; the spec §9 calibration is read from the pipeline's own outputs."""

from __future__ import annotations

import math
import shutil

import pandas as pd
import pytest
import yaml

from conftest import run_snakemake
from test_experiments import make_target_csv

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def workflow_run(paper_run):
    return paper_run


@pytest.fixture(scope="module")
def byo_run(paper_run, tmp_path_factory):
    """The paper run's directory copied, plus a user's experiment from a CSV and a config file that
    also asks for PDFs of every figure (the default draws PNGs only)."""
    work = tmp_path_factory.mktemp("byo")
    shutil.copytree(paper_run, work, dirs_exist_ok=True, symlinks=True)
    make_target_csv(work / "my_task.csv")
    (work / "mine.yaml").write_text(yaml.safe_dump({"figure_formats": ["png", "pdf"], "experiments": {"my_task": {
        "data": {"scores": "base", "targets_csv": "my_task.csv", "join": "model_id"},
        "targets": [{"name": "my_task", "column": "my_task_acc", "label": "My task", "range": [0.25, 1]}],
        "predictors": ["PC-1..3", "log10_flops"],
        "n_boot": 20,
    }}}))
    run_snakemake(work, "--configfile", "config/config.yaml", "mine.yaml")
    return work


def test_word_unscramble_calibration_from_pipeline_outputs(workflow_run):
    fits = pd.read_csv(workflow_run / "results/fits/emergent.csv")
    wu = fits[fits["target"] == "word_unscramble"].set_index("predictors")
    pcs = wu.loc["PC-1..3"]
    assert (pcs["link"], pcs["eq_family"], round(pcs["eq_slope"], 2), round(pcs["eq_intercept"], 2)) == \
        ("sigmoid", "Llama-2", 2.00, -6.11)
    assert (f"{pcs['mse_train']:.1e}", f"{pcs['mse_test']:.1e}") == ("1.3e-04", "4.0e-03")
    flops = wu.loc["log10_flops"]
    assert round(flops["eq_slope"] / math.log(10), 2) == 1.04 and round(flops["eq_intercept"], 2) == -7.03
    assert (f"{flops['mse_train']:.1e}", f"{flops['mse_test']:.1e}") == ("2.6e-04", "1.3e-02")
    required = {"experiment", "target", "predictors", "link", "n_train", "n_test", "mse_train", "mse_test", "h",
                "eq_family", "eq_slope", "eq_intercept", "alpha", "beta_1", "weight_MMLU"}
    assert required <= set(fits.columns)


def test_every_law_figure_and_table_is_written(workflow_run):
    config = yaml.safe_load((workflow_run / "config/config.yaml").read_text())
    config.update(yaml.safe_load((workflow_run / "config/figures.yaml").read_text()))
    from obsscale.stages.outputs import overview_experiments

    # The paper's experiments are drawn in the paper's figures (`overview: false`): no overview.
    for exp, block in config["experiments"].items():
        if block.get("overview", True) is False:
            assert not (workflow_run / f"results/figures/fits_{exp}.png").exists(), exp
    from obsscale.stages.outputs import figure_formats

    for stem in [*config["law_figures"], *(f"fits_{e}" for e in overview_experiments(config)), "figC19_nmf"]:
        for ext in (*figure_formats(config), "csv"):
            assert (workflow_run / f"results/figures/{stem}.{ext}").stat().st_size > 0, stem
    table = pd.read_csv(workflow_run / "results/prereg/table_c1.csv")
    assert {"emergent", "post_training", "agentic"} <= set(table["experiment"])
    scored = pd.read_csv(workflow_run / "results/prereg/emergent_scored.csv")
    assert scored["preregistered"].any()


def test_bring_your_own_experiment_through_the_workflow(byo_run):
    workflow_run = byo_run
    fits = pd.read_csv(workflow_run / "results/fits/my_task.csv")
    assert list(fits["predictors"]) == ["PC-1..3", "log10_flops"]
    assert (fits["status"] == "ok").all()
    preds = pd.read_csv(workflow_run / "results/fits/my_task/predictions.csv")
    assert preds["band_lo"].notna().any()
    assert (workflow_run / "results/prereg/my_task.json").exists()
    for ext in ("png", "pdf", "csv"):
        assert (workflow_run / f"results/figures/fits_my_task.{ext}").stat().st_size > 0
    # Every figure of the run in both formats: PDF asked for by config alone.
    pngs = sorted(p.stem for p in (workflow_run / "results/figures").glob("*.png"))
    assert len(pngs) > 30 and pngs == sorted(p.stem for p in (workflow_run / "results/figures").glob("*.pdf"))
    assert "my_task" in set(pd.read_csv(workflow_run / "results/prereg/table_c1.csv")["experiment"])


def test_default_run_predicts_the_models_without_a_target_value(workflow_run):
    """The default run's prediction set: every shipped model with scores but no value of a law's
    target, predicted by the frozen laws with a band, and the figure placing them on the curves."""
    pred = pd.read_csv(workflow_run / "results/predictions/untargeted.csv")
    targets = pd.read_csv(workflow_run / "resources/obsscaling/base_llm_emergent_capability_eval.csv")
    rows = pred[pred["law"] == "emergent/word_unscramble/PC-1..3"]
    known = set(targets.loc[targets["word_unscrambling_2_exact_match"].notna(), "Model"])
    assert len(rows) > 30 and not set(rows["model"]) & known
    ok = pred[pred["law_status"] == "ok"]
    assert ok["y_hat"].notna().mean() > 0.9 and (ok.dropna(subset=["y_hat"])["band_method"] == "bootstrap").all()
    assert {"emergent", "post_training", "agentic"} <= set(pred["experiment"])
    for ext in ("png", "csv"):
        assert (workflow_run / f"results/figures/predictions_untargeted.{ext}").stat().st_size > 0


def test_expected_degenerate_fits_are_one_line_per_stage(workflow_run):
    """The selection's 4-model fits and the experiments' degenerate fits are counted, not repeated."""
    selection = (workflow_run / "logs/selection/selection.log").read_text().splitlines()
    degenerate = [line for line in selection if "degenerate" in line]
    assert len(degenerate) == 1 and "law fits degenerate" in degenerate[0], degenerate[:3]
    fits = [line for line in (workflow_run / "logs/fits/experiments.log").read_text().splitlines()
            if "degenerate" in line]
    assert all("law fits degenerate" in line for line in fits)
    assert len(fits) == len({line.split(": ")[1] for line in fits})  # at most one line per experiment
