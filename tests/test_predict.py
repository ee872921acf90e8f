"""Prediction from frozen laws: the library call, the `obsscale` CLI (predict, laws, validate), the
stage's model sets, user families files that extend the shipped one, and bad inputs."""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from obsscale.capability import scores as D
from obsscale.core.errors import InputError
from obsscale.laws.frozen import FrozenLaw, load_frozen
from obsscale.laws.predict import PREDICTION_COLUMNS
from obsscale.stages.fits import write_experiment_fits, write_preregistration
from obsscale.stages.predict import predict_set

ROOT = Path(__file__).resolve().parents[1]
CONFIG = yaml.safe_load((ROOT / "config/config.yaml").read_text())
BASE = ROOT / CONFIG["scores"]["base"]["path"]
FAMILIES = ROOT / CONFIG["families"]
EMERGENT = CONFIG["experiments"]["emergent"]
CLI = [sys.executable, "-m", "obsscale.cli"]


def cli(*args, cwd=None) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]))
    return subprocess.run([*CLI, *args], capture_output=True, text=True, cwd=cwd, env=env)


@pytest.fixture(scope="module")
def frozen(tmp_path_factory) -> Path:
    """The paper's emergent experiment (two predictor sets, 20 bootstrap refits, no sweeps), fitted,
    frozen and scored as the workflow does; returns the folder with fits/ and prereg/."""
    out = tmp_path_factory.mktemp("frozen")
    block = dict(copy.deepcopy(EMERGENT), predictors=["PC-1..3", "log10_flops"], n_boot=20, sweeps={})
    block["data"]["targets_csv"] = str(ROOT / block["data"]["targets_csv"])
    config = {"scores": {"base": {"path": str(BASE), "metrics": CONFIG["scores"]["base"]["metrics"]}},
              "laws": CONFIG["laws"], "capability_space": CONFIG["capability_space"]}
    (out / "fits/emergent").mkdir(parents=True)
    (out / "prereg").mkdir()
    f = out / "fits/emergent"
    write_experiment_fits("emergent", block, config, BASE, FAMILIES, block["data"]["targets_csv"],
                          out / "fits/emergent.csv", f / "predictions.csv", f / "curves.csv",
                          f / "reference_lines.csv", f / "sweeps.csv", out / "prereg/emergent.json")
    write_preregistration({"emergent": {"prereg": str(out / "prereg/emergent.json"), "scores": str(BASE),
                                        "targets": block["data"]["targets_csv"],
                                        "scored": str(out / "prereg/emergent_scored.csv")}},
                          FAMILIES, out / "prereg/table_c1.csv")
    return out


def preregistered_scores(path: Path) -> pd.DataFrame:
    fams = D.load_families(FAMILIES)
    table = pd.read_csv(BASE)
    rows = table[table[D.MODEL].isin(fams.preregistered_models)]
    rows.to_csv(path, index=False)
    return rows


def test_cli_predictions_of_the_preregistered_models_equal_the_frozen_scores(frozen, tmp_path):
    scores = preregistered_scores(tmp_path / "prereg_models.csv")
    assert len(scores) == 20
    out = tmp_path / "predictions.csv"
    proc = cli("predict", str(tmp_path / "prereg_models.csv"), "--laws", str(frozen / "prereg"), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    pred = pd.read_csv(out)
    assert list(pred.columns) == PREDICTION_COLUMNS
    assert set(pred["model"]) == set(scores[D.MODEL]) and pred["law"].nunique() == 6  # 3 targets × 2 sets
    scored = pd.read_csv(frozen / "prereg/emergent_scored.csv")
    scored = scored[scored["preregistered"]]
    both = scored.merge(pred, left_on=["target", "predictors", D.MODEL], right_on=["target", "predictors", "model"],
                        suffixes=("_frozen", ""))
    assert len(both) == len(scored) > 0
    ok = both["law_status"] == "ok"
    assert ok.sum() > 0.8 * len(both)
    np.testing.assert_allclose(both.loc[ok, "y_hat"], both.loc[ok, "y_hat_frozen"], rtol=0, atol=1e-12)
    assert both.loc[~ok, "y_hat"].isna().all()  # diverged laws predict nothing...
    assert both.loc[~ok, "note"].str.contains("no prediction").all()  # ...and say so
    # The test MSE on the preregistered models, recomputed from these predictions, is the fit table's.
    fits = pd.read_csv(frozen / "fits/emergent.csv").set_index(["target", "predictors"])
    truth = pd.read_csv(frozen / "fits/emergent/predictions.csv")
    truth = truth[truth["role"] == "preregistered"]
    joined = truth.merge(pred, left_on=["target", "predictors", D.MODEL], right_on=["target", "predictors", "model"],
                         suffixes=("_fit", ""))
    checked = 0
    for (target, predictors), g in joined.groupby(["target", "predictors"]):
        if fits.loc[(target, predictors), "status"] != "ok":
            continue
        mse = float(np.mean((g["y"] - g["y_hat"]) ** 2))
        assert mse == pytest.approx(fits.loc[(target, predictors), "mse_prereg"], rel=1e-10, abs=1e-15)
        checked += 1
    assert checked >= 4


def test_a_model_the_laws_never_saw_gets_every_law_with_a_band(frozen, tmp_path):
    path = tmp_path / "mine.csv"
    pd.DataFrame({"Model": ["me/my-model-7b"], "Model Family": ["MyOwnFamily"], "FLOPs (1E21)": [50.0],
                  "MMLU": [0.55], "ARC-C": [0.5], "HellaSwag": [0.78], "Winograd": [0.74], "TruthfulQA": [0.4],
                  "GSM8K": [0.2], "XWinograd": [0.8], "HumanEval": [None]}).to_csv(path, index=False)
    proc = cli("predict", str(path), "--laws", str(frozen / "prereg"), "--families", str(FAMILIES),
               "--out", str(tmp_path / "p.csv"))
    assert proc.returncode == 0, proc.stderr
    assert "MyOwnFamily" in proc.stderr and "allowed" in proc.stderr  # the unknown family is reported
    assert "me/my-model-7b" in proc.stdout
    pred = pd.read_csv(tmp_path / "p.csv")
    ok = pred[pred["law_status"] == "ok"]
    assert len(ok) >= 4 and ok["y_hat"].notna().all()
    assert (ok["band_method"] == "bootstrap").all()
    assert (ok["band_lo"] <= ok["band_hi"]).all() and ok[["band_lo", "band_hi"]].notna().all().all()
    pcs = ok[ok["predictors"] == "PC-1..3"]
    assert (pcs["imputed_metrics"] == "HumanEval").all()
    assert pcs[["PC-1", "PC-2", "PC-3", "capability_index", "log10_equivalent_flops"]].notna().all().all()
    assert (pcs["reference_family"] == "Llama-2").all()
    flops = ok[ok["predictors"] == "log10_flops"]
    np.testing.assert_allclose(flops["log10_equivalent_flops"], np.log10(50.0 + 1e-9))
    # the same through the library, from a frame, with the law restored on its own
    law = FrozenLaw.from_json(frozen / "prereg/emergent.json", target="word_unscramble")
    y, lo, hi = law.predict(pd.read_csv(path), return_band=True)
    row = pred[pred["law"] == "emergent/word_unscramble/PC-1..3"].iloc[0]
    assert (y[0], lo[0], hi[0]) == pytest.approx((row["y_hat"], row["band_lo"], row["band_hi"]), abs=1e-12)


def test_frozen_law_reproduces_the_fit_and_its_band(frozen):
    """The frozen record alone gives the fit's ŷ and bootstrap band for every model it scored."""
    preds = pd.read_csv(frozen / "fits/emergent/predictions.csv")
    scores = pd.read_csv(BASE)
    for law in load_frozen(frozen / "prereg", select="emergent/persian_qa"):
        rows = preds[(preds["target"] == "persian_qa") & (preds["predictors"] == law.predictors_.name)]
        X = scores.set_index(D.MODEL).loc[rows[D.MODEL]].reset_index()
        y, lo, hi = law.predict(X, return_band=True)
        if law.status_ != "ok":
            continue
        np.testing.assert_allclose(y, rows["y_hat"], atol=1e-12)
        np.testing.assert_allclose(lo, rows["band_lo"], atol=1e-12)
        np.testing.assert_allclose(hi, rows["band_hi"], atol=1e-12)
        np.testing.assert_allclose(law.decision_function(X), rows["index"], atol=1e-10)


def test_library_call_and_lazy_top_level(frozen):
    import obsscale

    scores = pd.read_csv(BASE).head(3)
    table = obsscale.predict(scores, laws=obsscale.load_frozen(frozen / "prereg", main_only=True))
    assert len(table) == 3 * 3 and table["main"].all()
    assert obsscale.FrozenLaw is FrozenLaw
    bad = scores.astype({"MMLU": object})
    bad.loc[1, "MMLU"] = "0.5x"
    with pytest.raises(InputError, match="column 'MMLU': '0.5x' is not a number"):
        obsscale.predict(bad, laws=frozen / "prereg")
    code = "import sys, obsscale; print('pandas' in sys.modules, 'scipy' in sys.modules)"
    light = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           env=dict(os.environ, PYTHONPATH=str(ROOT / "src")))
    assert light.stdout.split() == ["False", "False"], light.stderr


@pytest.mark.parametrize("edit, pattern", [
    (lambda df: df.drop(columns=["MMLU"]), r"column\(s\) \['MMLU'\] missing"),
    (lambda df: df.assign(GSM8K=df["GSM8K"].astype(object).where(df.index != 2, "0.3o")),
     r"line 4, column 'GSM8K': '0.3o' is not a number"),
    (lambda df: df.assign(ARC=0).rename(columns={"ARC": "ARC-C"}).assign(**{"ARC-C": 1.5}), r"above the allowed range"),
    (lambda df: df.iloc[[0, 0]], r"line 3, column 'Model': duplicate model"),
])
def test_bad_scores_give_one_error_and_no_output(frozen, tmp_path, edit, pattern):
    path = tmp_path / "bad.csv"
    edit(pd.read_csv(BASE).head(4)).to_csv(path, index=False)
    out = tmp_path / "out.csv"
    proc = cli("predict", str(path), "--laws", str(frozen / "prereg"), "--out", str(out))
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("obsscale predict: error: "), proc.stderr
    assert re.search(pattern, lines[0]), lines[0]
    assert not out.exists() and not list(tmp_path.glob(".out.csv*"))


@pytest.mark.parametrize("args, pattern", [
    (["--law", "emergent/word_unscrambel"], r"unknown law 'emergent/word_unscrambel'.*did you mean 'emergent/word_unscramble'"),
    (["--laws", "no/such/folder"], r"no such frozen-law file or folder"),
])
def test_unknown_law_or_folder_is_one_error(frozen, tmp_path, args, pattern):
    path = tmp_path / "ok.csv"
    pd.read_csv(BASE).head(2).to_csv(path, index=False)
    argv = ["predict", str(path), "--out", str(tmp_path / "out.csv"), *args]
    if "--laws" not in args:
        argv += ["--laws", str(frozen / "prereg")]
    proc = cli(*argv)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert re.search(pattern, proc.stderr), proc.stderr
    assert not (tmp_path / "out.csv").exists()


def test_help_everywhere_and_the_console_script():
    for argv in ([], ["predict"], ["laws"], ["validate"]):
        proc = cli(*argv, "--help")
        assert proc.returncode == 0 and "usage: obsscale" in proc.stdout, proc.stderr
    assert cli().returncode == 2  # no command: the help, and a non-zero exit
    from importlib.metadata import entry_points

    (ep,) = [e for e in entry_points(group="console_scripts") if e.name == "obsscale"]
    assert ep.value == "obsscale.cli:main"
    script = Path(sys.executable).parent / "obsscale"
    assert script.exists(), "the obsscale console script is not installed (pip install -e .)"
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    proc = subprocess.run([str(script), "--help"], capture_output=True, text=True, env=env)
    assert proc.returncode == 0 and "predict" in proc.stdout and "validate" in proc.stdout


def test_laws_command_lists_table_c1_forms(frozen):
    proc = cli("laws", "--laws", str(frozen / "prereg"), "--format", "json")
    assert proc.returncode == 0, proc.stderr
    forms = json.loads(proc.stdout)
    assert [f["law"] for f in forms] == [f"emergent/{t}/PC-1..3" for t in ("word_unscramble", "persian_qa",
                                                                           "ipa_transliterate")]
    c1 = pd.read_csv(frozen / "prereg/table_c1.csv").set_index("target")
    for f in forms:
        for key in ("form_equivalent_flops", "form_pcs", "form_metric_weights"):
            assert f[key] == c1.loc[f["target"], key]
    table = cli("laws", "--laws", str(frozen / "prereg"), "--all")
    assert table.returncode == 0 and table.stdout.count("emergent/") == 6


def test_validate_command(tmp_path):
    ok = cli("validate", str(BASE), "--families", str(FAMILIES))
    assert ok.returncode == 0 and "OK" in ok.stdout and "148 models" in ok.stdout
    bad = tmp_path / "bad.csv"
    df = pd.read_csv(BASE).head(5).astype({"HellaSwag": object})
    df.loc[3, "HellaSwag"] = "high"
    df.to_csv(bad, index=False)
    proc = cli("validate", str(bad))
    assert proc.returncode == 2
    assert proc.stderr.strip() == (f"obsscale validate: error: {bad}, line 5, column 'HellaSwag': "
                                   "'high' is not a number")


def test_default_set_predicts_models_without_a_target_value(frozen):
    table = predict_set([str(BASE)], [str(frozen / "prereg/emergent.json")], laws="all", models="without_target")
    targets = pd.read_csv(ROOT / EMERGENT["data"]["targets_csv"])
    for (target, column) in (("word_unscramble", "word_unscrambling_2_exact_match"),
                             ("persian_qa", "parsinlu_qa_2_acc")):
        known = set(targets.loc[targets[column].notna(), "Model"])
        rows = table[table["target"] == target]
        expected = set(pd.read_csv(BASE)["Model"]) - known
        assert set(rows["model"]) == expected and len(expected) > 30
    # RWKV has no emergent scores in the shipped tables: it is predicted, with a band
    rwkv = table[(table["family"] == "RWKV") & (table["law_status"] == "ok") & (table["predictors"] == "PC-1..3")]
    assert len(rwkv) and rwkv[["y_hat", "band_lo", "band_hi"]].notna().all().all()


def test_families_file_extends_the_shipped_one(tmp_path):
    mine = tmp_path / "mine.yaml"
    mine.write_text(f"extends: {os.path.relpath(FAMILIES, tmp_path)}\n"
                    "eval_base_families: [MyFamily]\nno_flops_families: [MyFamily]\n"
                    "benchmark_floors: {MyBench: 0.5}\n")
    shipped, fams = D.load_families(FAMILIES), D.load_families(mine)
    assert fams.eval_base_families == (*shipped.eval_base_families, "MyFamily")
    assert fams.preregistered_models == shipped.preregistered_models
    assert fams.benchmark_floors == {**shipped.benchmark_floors, "MyBench": 0.5}
    # the paper's tables still validate with the extended file
    D.read_score_table(BASE, CONFIG["scores"]["base"]["metrics"], fams)
    loop = tmp_path / "loop.yaml"
    loop.write_text("extends: loop.yaml\n")
    with pytest.raises(D.ScoreTableError, match="cycle"):
        D.load_families(loop)


def test_imputing_a_row_does_not_depend_on_the_other_rows():
    from obsscale.capability.impute import PCAImputer

    rng = np.random.default_rng(0)
    X = np.clip(rng.normal(0.5, 0.15, (40, 6)) + rng.normal(0, 0.2, (40, 1)), 0, 1)
    X[rng.random(X.shape) < 0.1] = np.nan
    X[:, 0] = np.where(np.isnan(X[:, 0]), 0.4, X[:, 0])
    imputer = PCAImputer().fit(X[:30])
    batch = imputer.transform(X[30:])
    for i in range(10):
        np.testing.assert_allclose(imputer.transform(X[30 + i: 31 + i])[0], batch[i], rtol=0, atol=1e-14)


def test_models_without_a_target_value_are_logged(caplog, frozen, tmp_path):
    from obsscale.laws.frame import experiment_frame
    from obsscale.laws.spec import resolve_experiment

    block = dict(copy.deepcopy(EMERGENT), sweeps={})
    block["data"]["targets_csv"] = str(ROOT / block["data"]["targets_csv"])
    spec = resolve_experiment("emergent", block, {"scores": CONFIG["scores"], "laws": {}})
    with caplog.at_level("INFO", logger="obsscale.laws.frame"):
        experiment_frame(spec, BASE, D.load_families(FAMILIES), block["data"]["targets_csv"])
    assert any("have no row in" in r.getMessage() and "prediction stage" in r.getMessage() for r in caplog.records)


def test_a_table_no_frozen_law_reads_is_left_out_with_a_warning(frozen, caplog):
    """The default `predict` set names the base and the instruct table; with only base laws frozen
    the instruct table is left out (one warning), not an error.  Alone, it is an error."""
    import logging

    instruct = ROOT / CONFIG["scores"]["instruct"]["path"]
    prereg = [str(frozen / "prereg/emergent.json")]
    with caplog.at_level(logging.WARNING, logger="obsscale.stages.predict"):
        both = predict_set([str(BASE), str(instruct)], prereg, laws="all", models="without_target")
    base_only = predict_set([str(BASE)], prereg, laws="all", models="without_target")
    pd.testing.assert_frame_equal(both, base_only)
    assert any("left out, no frozen law can predict it" in r.getMessage() for r in caplog.records)
    with pytest.raises(InputError, match="missing, needed by law"):
        predict_set([str(instruct)], prereg, laws="all", models="without_target")


def test_figure_panels_of_experiments_not_run_are_left_out(frozen):
    """`figure_laws` naming experiments this run did not fit (the default's list in a config that
    runs other experiments) draws the laws that exist instead of failing the prediction job."""
    from obsscale.laws.frozen import laws_of, read_record
    from obsscale.stages.predict import figure_panels

    doc = read_record(frozen / "prereg/emergent.json")
    table = predict_set([str(BASE)], [str(frozen / "prereg/emergent.json")], laws="all", models="without_target")
    laws = laws_of(doc)
    panels = figure_panels(table, laws, ["agentic", "post_training"])
    assert panels and all(p["title"].startswith("emergent:") for p in panels)
    assert len(figure_panels(table, laws, ["emergent", "agentic"])) == len(panels)
