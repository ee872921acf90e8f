"""The paper's calibration numbers (spec §9), read from the outputs of a real Snakemake run of the
default configuration, and the workflow's caching behaviour."""

from __future__ import annotations

import os
import re
import time

import numpy as np
import pandas as pd
import pytest

from conftest import make_workdir, run_snakemake

pytestmark = pytest.mark.slow

BASE8 = ["MMLU", "ARC-C", "HellaSwag", "Winograd", "TruthfulQA", "GSM8K", "XWinograd", "HumanEval"]


def test_default_set_and_split_sizes(paper_run):
    scores = pd.read_csv(paper_run / "results/pca/base8/scores.csv")
    assert len(scores) == 77
    assert scores["Model Family"].nunique() == 21
    # The default cutoff (Llama-2-7B's compute, 8.4e22 FLOPs) splits 47 / 30; NaN FLOPs are test.
    llama2_7b = scores.loc[scores["Model"] == "meta-llama/Llama-2-7b-hf", "FLOPs (1E21)"].item()
    assert llama2_7b == 84
    train = scores["FLOPs (1E21)"] <= llama2_7b
    assert (int(train.sum()), int((~train).sum())) == (47, 30)


def test_explained_variance_matches_the_paper(paper_run):
    evr = pd.read_csv(paper_run / "results/pca/base8/explained_variance.csv")
    assert list(evr["component"][:3]) == ["PC-1", "PC-2", "PC-3"]
    assert evr["ratio"][0] == pytest.approx(0.802, abs=5e-4)
    assert evr["cumulative"][2] == pytest.approx(0.967, abs=5e-4)
    instruct = pd.read_csv(paper_run / "results/pca/instruct7/explained_variance.csv")
    assert instruct["cumulative"][2] == pytest.approx(0.985, abs=5e-4)


def test_loadings_and_sign_convention(paper_run):
    loadings = pd.read_csv(paper_run / "results/pca/base8/loadings.csv").set_index("component")
    expected = {
        "PC-1": [0.448, 0.344, 0.379, 0.242, 0.085, 0.552, 0.214, 0.347],
        "PC-2": [-0.120, 0.301, 0.615, 0.303, -0.194, -0.433, 0.187, -0.405],
        "PC-3": [-0.317, 0.041, 0.101, 0.000, -0.267, -0.353, 0.094, 0.826],
    }
    for comp, values in expected.items():
        np.testing.assert_allclose(loadings.loc[comp, BASE8].to_numpy(float), values, atol=6e-4)
    np.testing.assert_allclose(loadings.loc["mean", BASE8].to_numpy(float),
                               [0.415, 0.440, 0.648, 0.664, 0.413, 0.193, 0.674, 0.199], atol=6e-4)


def test_imputed_cells(paper_run):
    imputed = pd.read_csv(paper_run / "results/pca/base8/imputed.csv").set_index("Model")
    assert (imputed["imputed_columns"].fillna("") != "").sum() == 6
    expected = {("meta-llama/Meta-Llama-3-70B", "ARC-C"): 0.727, ("meta-llama/Meta-Llama-3-8B", "ARC-C"): 0.615,
                ("tiiuae/falcon-180B", "HumanEval"): 0.418, ("tiiuae/falcon-40b", "HumanEval"): 0.331,
                ("tiiuae/falcon-7b", "HumanEval"): 0.196, ("tiiuae/falcon-rw-1b", "HumanEval"): 0.094}
    for (model, col), value in expected.items():
        assert imputed.loc[model, col] == pytest.approx(value, abs=1.5e-3), (model, col)


def test_per_family_r2_of_pc1(paper_run):
    laws = pd.read_csv(paper_run / "results/family_laws/base8/pc_vs_log10_flops.csv")
    pc1 = laws[(laws["component"] == "PC-1") & (laws["n"] >= 3)].set_index("family")["r2"]
    expected = {"BLOOM": .981, "CodeLlama": .959, "DeepSeek-Coder": .959, "Falcon": .940, "GPT-Neo/J": .945,
                "Llama": .981, "Llama-2": .9995, "OPT": .984, "Pythia": .985, "Qwen": .964, "Qwen1.5": .972,
                "StarCoder": .974, "StarCoder2": .899, "XGLM": .988}
    assert set(pc1.index) == set(expected)
    for fam, r2 in expected.items():
        assert pc1[fam] == pytest.approx(r2, abs=1.5e-3), fam
    assert pc1.mean() == pytest.approx(0.966, abs=1e-3)
    for comp, mean_r2 in (("PC-2", 0.67), ("PC-3", 0.76)):
        sel = laws[(laws["component"] == comp) & (laws["n"] >= 3)]
        assert sel["r2"].mean() == pytest.approx(mean_r2, abs=0.01)


def test_every_figure_has_its_csv_and_no_pdf_by_default(paper_run):
    figures = paper_run / "results/figures"
    pngs = sorted(figures.glob("*.png"))
    assert len(pngs) >= 9
    for png in pngs:
        assert png.with_suffix(".csv").stat().st_size > 0
    assert not list(figures.glob("*.pdf"))  # `figure_formats: [png, pdf]` adds them (test_fits_workflow)
    fig8 = pd.read_csv(figures / "fig8_pc1_vs_flops_all_families.csv")
    models = fig8[fig8["kind"] == "model"]
    assert len(models) == 77
    assert models["x"].isna().sum() == 2  # Mistral-7B and Mixtral-8x7B: the N/A column
    assert fig8["r2_avg"].iloc[0] == pytest.approx(0.966, abs=1e-3)


def test_second_run_does_nothing(paper_run):
    proc = run_snakemake(paper_run, "--dry-run")
    assert "Nothing to be done" in proc.stdout + proc.stderr


def test_changing_one_score_file_reruns_only_its_dependents(paper_run):
    table = paper_run / "resources/obsscaling/instruct_llm_benchmark_eval.csv"
    # A bare touch is not enough: Snakemake compares the content of small inputs, not only mtimes.
    now = time.time()
    os.utime(table, (now, now))
    assert "Nothing to be done" in run_snakemake(paper_run, "--dry-run").stdout
    df = pd.read_csv(table)
    df.loc[0, "MMLU"] = round(df.loc[0, "MMLU"] + 0.001, 6)
    df.to_csv(table, index=False)
    proc = run_snakemake(paper_run, "--dry-run", "--quiet", "rules")
    out = proc.stdout + proc.stderr
    jobs = dict(re.findall(r"^(\w+)\s+(\d+)$", out, flags=re.M))
    assert jobs.get("import_scores") == "1"
    assert jobs.get("capability_instruct7") == "1"
    assert jobs.get("capability_figures") == "1"  # draws Fig C.1 from instruct7
    # The base sets (their PCA, family laws and NMF) do not read the instruct table.
    assert not {"capability_base8", "capability_base7_nongsm"} & set(jobs)
    run_snakemake(paper_run)
    assert "Nothing to be done" in " ".join(run_snakemake(paper_run, "--dry-run").stdout.split("\n"))


def test_report_builds_with_a_caption_per_figure(paper_run):
    run_snakemake(paper_run, "--report", "report.html")
    html = (paper_run / "report.html").read_text(errors="replace")
    assert len(html) > 10_000
    assert "fig3_pc1_vs_flops_by_family" in html
    # Every caption renders: docutils writes a "System Message" box for any markup it cannot parse.
    assert "System Message" not in html
    # The landing page, the paper's sections as categories, one subcategory per figure, the tables.
    assert "How to read the figures" in html and "Apache License 2.0" in html
    for name in ("3 Capability space", "4.1 Emergent capabilities", "5 Selecting models", "Tables",
                 "Fig C.03", "Table C.1", "table1.csv", "table_c1.csv", "emergent.csv"):
        assert name in html, name


def test_bad_score_table_fails_cleanly_with_no_partial_result(tmp_path):
    workdir = make_workdir(tmp_path / "bad")
    table = workdir / "resources/obsscaling/base_llm_benchmark_eval.csv"
    df = pd.read_csv(table, dtype=str)
    df.loc[4, "HellaSwag"] = "1.3"
    df.to_csv(table, index=False)
    proc = run_snakemake(workdir, "results/pca/base8/scores.csv", check=False)
    assert proc.returncode != 0
    # Stopped while the workflow is read, before any job: one line, nothing written.
    error = proc.stderr.strip().splitlines()[-1]
    assert error.startswith("Error: ") and "line 6, column 'HellaSwag'" in error
    assert "above the allowed range" in error
    assert not (workdir / "results").exists()
