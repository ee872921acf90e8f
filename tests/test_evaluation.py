"""Unit tests of the evaluation stage's library: model sheet and suite validation, the lm-eval
call plan and the aggregation into tidy and wide score tables (no model is loaded here)."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import make_workdir, run_snakemake

from obsscale.evaluation.harness import lm_eval_model
from obsscale.evaluation.sheet import EvaluationConfigError, check_families, load_model_sheet, load_suites, model_slug, model_suites, runnable_benchmarks
from obsscale.evaluation.tables import META_COLUMNS, aggregate_evaluation, tidy_results, wide_scores

ROOT = Path(__file__).resolve().parents[1]
SHEET_SCHEMA = ROOT / "workflow/schemas/models.schema.yaml"
SUITES_SCHEMA = ROOT / "workflow/schemas/suites.schema.yaml"
BASE_TABLE = ROOT / "resources/obsscaling/base_llm_benchmark_eval.csv"

HEADER = "model\tname\tfamily\tparams_b\ttokens_t\tflops_1e21\tbackend\tgpus\n"


def write_sheet(tmp_path, *rows, header=HEADER):
    path = tmp_path / "models.tsv"
    path.write_text(header + "".join(r + "\n" for r in rows))
    return path


# ------------------------------------------------------------------------------ model sheet


def test_shipped_and_test_sheets_load():
    for sheet in (ROOT / "config/models.tsv", ROOT / "tests/eval/models.tsv"):
        df = load_model_sheet(sheet, SHEET_SCHEMA)
        assert len(df) >= 3
        assert df["slug"].is_unique
        assert set(df["backend"]) <= {"hf", "vllm"}


def test_flops_default_to_six_n_d_and_stay_missing_without_data_size(tmp_path):
    path = write_sheet(
        tmp_path,
        "org/a\t\tLlama-2\t7\t2\t\thf\t1",
        "org/b\tB model\tLlama-2\t13\t\t\thf\t1",
        "org/c\t\tLlama-2\t7\t2\t100\tvllm\t2",
    )
    df = load_model_sheet(path, SHEET_SCHEMA)
    assert df.loc["org__a", "flops_1e21"] == pytest.approx(84.0)  # Llama-2-7B: 6 × 7 × 2 = 84
    assert df.loc["B-model", "flops_1e21"] is None or math.isnan(df.loc["B-model", "flops_1e21"])
    assert df.loc["org__c", "flops_1e21"] == 100  # given FLOPs are kept
    assert df.loc["org__a", "name"] == "org/a"  # the Model name defaults to the model id


@pytest.mark.parametrize(
    "rows, header, expected",
    [
        (["org/a\t\tLlama-2\tseven\t2\t\thf\t1"], HEADER, ["row 2", "'params_b'", "seven"]),
        (["org/a\t\tLlama-2\t7\t2\t\thf\t1", "org/b\t\tLlama-2\t7\t2\t\ttpu\t1"], HEADER, ["row 3", "'backend'"]),
        (["org/a\t\t\t7\t2\t\thf\t1"], HEADER, ["row 2", "'family' is a required property"]),
        (["org/a\t\tLlama-2\t-7\t2\t\thf\t1"], HEADER, ["row 2", "'params_b'"]),
        (["org/a\t\tLlama-2\t7\t2\t\thf\t0.5"], HEADER, ["row 2", "'gpus'", "integer"]),
        (["org/a\t\tLlama-2\t7\t2"], HEADER, ["row 2", "5 tab-separated cells", "header has 8"]),
        (["org/a\tLlama-2"], "model\tfamilly\n", ["row 1", "unknown column 'familly'"]),
        (["org/a\tx\tLlama-2\t7\t2\t\thf\t1", "org/b\tx\tLlama-2\t7\t2\t\thf\t1"], HEADER, ["row 3", "'name'", "repeats row 2"]),
        ([], HEADER, ["lists no models"]),
    ],
)
def test_malformed_sheet_names_file_row_and_field(tmp_path, rows, header, expected):
    path = write_sheet(tmp_path, *rows, header=header)
    with pytest.raises(EvaluationConfigError) as err:
        load_model_sheet(path, SHEET_SCHEMA)
    message = str(err.value)
    assert str(path) in message
    for part in expected:
        assert part in message, message


def test_unknown_family_names_the_row(tmp_path):
    path = write_sheet(tmp_path, "org/a\t\tLlama-2\t7\t2\t\thf\t1", "org/b\t\tLlama-9\t7\t2\t\thf\t1")
    df = load_model_sheet(path, SHEET_SCHEMA)
    with pytest.raises(EvaluationConfigError, match=r"row 3, field 'family': 'Llama-9'"):
        check_families(df, ROOT / "resources/obsscaling/families.yaml", str(path))


def test_slug_is_file_name_safe():
    assert model_slug("meta-llama/Llama-2-7b-hf") == "meta-llama__Llama-2-7b-hf"
    assert "/" not in model_slug("a/b c:d") and " " not in model_slug("a/b c:d")


def test_model_arguments_for_each_backend():
    row = {"model": "org/m", "revision": "abc", "dtype": "bfloat16", "backend": "hf", "gpus": 0,
           "model_args": "trust_remote_code=True,max_length=2048"}
    kind, args = lm_eval_model(row)
    assert kind == "hf"
    assert args == {"pretrained": "org/m", "revision": "abc", "dtype": "bfloat16",
                    "trust_remote_code": "True", "max_length": "2048"}
    kind, args = lm_eval_model({**row, "backend": "vllm", "gpus": 4, "model_args": ""})
    assert kind == "vllm" and args["tensor_parallel_size"] == 4


def test_model_suites_cell_overrides_the_default():
    assert model_suites({"suites": ""}, ["base"]) == ["base"]
    assert model_suites({"suites": "base, emergent"}, ["base"]) == ["base", "emergent"]


# ------------------------------------------------------------------------------ suites


def test_base_suite_columns_are_the_shipped_base_table_metrics():
    suites = load_suites(ROOT / "config/suites.yaml", SUITES_SCHEMA)
    shipped = list(pd.read_csv(BASE_TABLE, nrows=1).columns)
    assert META_COLUMNS + list(suites["base"]["benchmarks"]) == shipped
    emergent = list(pd.read_csv(ROOT / "resources/obsscaling/base_llm_emergent_capability_eval.csv", nrows=1).columns)
    assert set(suites["emergent"]["benchmarks"]) <= set(emergent)


def test_paper_protocol_of_the_base_suite():
    base = load_suites(ROOT / "config/suites.yaml", SUITES_SCHEMA)["base"]["benchmarks"]
    shots = {c: b["num_fewshot"] for c, b in base.items()}
    assert shots == {"MMLU": 5, "ARC-C": 25, "HellaSwag": 10, "Winograd": 5, "TruthfulQA": 0,
                     "GSM8K": 5, "XWinograd": 5, "HumanEval": 0}
    assert base["ARC-C"]["metric"] == base["HellaSwag"]["metric"] == "acc_norm"
    # HumanEval is the project's local task, judged in its sandbox: no unsandboxed lm-eval code.
    assert base["HumanEval"]["task"] == "humaneval_sandboxed"
    assert not base["HumanEval"].get("unsafe_code")


def test_unsandboxed_code_execution_needs_the_opt_in():
    base = load_suites(ROOT / "config/suites.yaml", SUITES_SCHEMA)["base"]
    assert "HumanEval" in runnable_benchmarks(base, allow_code_execution=False)  # sandboxed
    suite = {"benchmarks": {"MBPP": {"task": "mbpp", "unsafe_code": True}, **base["benchmarks"]}}
    assert "MBPP" not in runnable_benchmarks(suite, allow_code_execution=False)
    assert "MBPP" in runnable_benchmarks(suite, allow_code_execution=True)


@pytest.mark.parametrize(
    "suite, expected",
    [
        ({"benchmarks": {"X": {"metric": "acc"}}}, ["suite 's'", "benchmark 'X'", "'task' is a required property"]),
        ({"benchmarks": {"X": {"task": "t", "metric": "acc", "num_fewshot": -1}}}, ["benchmark 'X'", "field 'num_fewshot'"]),
        ({"benchmarks": {"X": {"task": "t", "metric": "acc", "aggregate": "median"}}}, ["benchmark 'X'", "field 'aggregate'"]),
        ({"benchmarks": {"X": {"task": "t", "metric": "acc", "shots": 5}}}, ["benchmark 'X'", "'shots'"]),
        ({"benchmarks": {}}, ["suite 's'"]),
        ({"tasks": []}, ["suite 's'"]),
    ],
)
def test_malformed_suite_names_suite_benchmark_and_field(tmp_path, suite, expected):
    path = tmp_path / "suites.yaml"
    path.write_text(yaml.safe_dump({"suites": {"s": suite}}))
    with pytest.raises(EvaluationConfigError) as err:
        load_suites(path, SUITES_SCHEMA)
    assert str(path) in str(err.value)
    for part in expected:
        assert part in str(err.value), str(err.value)


def test_suites_file_without_suites_key(tmp_path):
    path = tmp_path / "suites.yaml"
    path.write_text("base: {}\n")
    with pytest.raises(EvaluationConfigError, match="'suites:'"):
        load_suites(path, SUITES_SCHEMA)


# ------------------------------------------------------------------------------ aggregation


def fake_results(path, name, values, leaf_values):
    """A results JSON shaped as run_suite writes it (lm-eval's keys + the obsscale block)."""
    suite = {
        "A": {"task": "task_a", "metric": "acc_norm", "num_fewshot": 2, "leaf_tasks": ["task_a"]},
        "G": {"task": "grp", "metric": "acc", "aggregate": "mean", "num_fewshot": 5,
              "leaf_tasks": ["grp_x", "grp_y", "grp_z"]},
        "W": {"task": "grp", "metric": "acc", "num_fewshot": 5, "leaf_tasks": ["grp_x", "grp_y", "grp_z"]},
    }
    results = {"task_a": {"acc_norm,none": values["A"], "acc_norm_stderr,none": 0.01},
               "grp": {"acc,none": values["W"], "acc_stderr,none": 0.02}}
    for leaf, v in zip(suite["G"]["leaf_tasks"], leaf_values):
        results[leaf] = {"acc,none": v, "acc_stderr,none": 0.03}
    data = {"results": results, "lm_eval_version": "0.4.13", "date": 1.7e9,
            "configs": {}, "obsscale": {"model": {"name": name}, "suite": suite, "suite_name": "s",
                                         "task_hashes": {"task_a": "h1", "grp_x": "h2"}}}
    Path(path).write_text(json.dumps(data))
    return path


def test_tidy_results_reduce_groups_as_configured(tmp_path):
    path = fake_results(tmp_path / "s.json", "org/m", {"A": 0.4, "W": 0.9}, [0.1, 0.2, 0.6])
    tidy = tidy_results(path).set_index("benchmark")
    assert tidy.loc["A", "value"] == 0.4 and tidy.loc["A", "stderr"] == 0.01
    assert tidy.loc["G", "value"] == pytest.approx(0.3)  # unweighted mean of the group's tasks
    assert tidy.loc["W", "value"] == 0.9  # lm-eval's own group aggregate
    assert (tidy["source"] == "run").all() and (tidy["harness_version"] == "0.4.13").all()
    assert tidy.loc["A", "task_hash"] == "h1"


def test_missing_metric_key_is_named(tmp_path):
    path = fake_results(tmp_path / "s.json", "m", {"A": 0.4, "W": 0.9}, [0.1, 0.2, 0.6])
    data = json.loads(path.read_text())
    data["obsscale"]["suite"]["A"]["filter"] = "strict-match"
    path.write_text(json.dumps(data))
    with pytest.raises(KeyError, match="acc_norm,strict-match"):
        tidy_results(path)


def test_wide_table_merges_run_and_imported_scores(tmp_path):
    sheet = write_sheet(
        tmp_path,
        "org/new\t\tLlama-2\t1\t1\t\thf\t0",
        "meta-llama/Llama-2-7b-hf\t\tLlama-2\t7\t2\t\thf\t1",
        "org/noflops\t\tMistral\t7\t\t\thf\t1",
    )
    results = []
    for i, name in enumerate(["org/new", "meta-llama/Llama-2-7b-hf", "org/noflops"]):
        results.append(str(fake_results(tmp_path / f"r{i}.json", name, {"A": 0.1 * (i + 1), "W": 0.5}, [0.2, 0.4, 0.6])))
    imported = tmp_path / "imported.csv"
    pd.DataFrame(
        {"Model": ["meta-llama/Llama-2-7b-hf", "org/old"], "Model Family": ["Llama-2", "Llama"],
         "Model Size (B)": [7, 13], "Pretraining Data Size (T)": [2, 1], "FLOPs (1E21)": [84, 78],
         "A": [0.77, 0.5], "G": [None, 0.25], "Other": [1, 1]}
    ).to_csv(imported, index=False)

    for prefer, expect_a in (("run", 0.2), ("imported", 0.77)):
        tidy_out, wide_out = tmp_path / f"tidy_{prefer}.csv", tmp_path / f"wide_{prefer}.csv"
        aggregate_evaluation(results, str(sheet), str(SHEET_SCHEMA), ["A", "G", "W"], str(tidy_out),
                             str(wide_out), imported=str(imported), prefer=prefer)
        wide = pd.read_csv(wide_out).set_index("Model")
        assert list(pd.read_csv(wide_out).columns) == META_COLUMNS + ["A", "G", "W"]
        assert wide.loc["meta-llama/Llama-2-7b-hf", "A"] == pytest.approx(expect_a)
        # The preferred source lacks G for Llama-2-7b when imported wins: the run fills it.
        assert wide.loc["meta-llama/Llama-2-7b-hf", "G"] == pytest.approx(0.4)
        assert wide.loc["org/old", "A"] == 0.5 and math.isnan(wide.loc["org/old", "W"])
        assert wide.loc["org/new", "FLOPs (1E21)"] == 6
        assert math.isnan(wide.loc["org/noflops", "FLOPs (1E21)"])  # kept, with NaN FLOPs
        tidy = pd.read_csv(tidy_out)
        assert set(tidy["source"]) == {"run", "imported"}
        assert "Other" not in set(tidy["benchmark"])


def test_wide_scores_rejects_unknown_preference(tmp_path):
    with pytest.raises(ValueError, match="prefer"):
        wide_scores(pd.DataFrame(columns=["model", "benchmark", "value", "source"]), pd.DataFrame(), [], None, "newest")


# ------------------------------------------------------------------------------ workflow wiring


def test_default_config_evaluates_nothing():
    config = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    assert config["evaluation"]["enabled"] is False
    example = yaml.safe_load((ROOT / "config/evaluation-example.yaml").read_text())
    assert example["evaluation"]["enabled"] is True


def eval_workdir(tmp_path):
    work = make_workdir(tmp_path / "work")
    shutil.copytree(ROOT / "tests/eval", work / "tests/eval")
    return work


def test_malformed_sheet_stops_the_workflow_before_any_job(tmp_path):
    work = eval_workdir(tmp_path)
    bad = work / "bad_models.tsv"
    bad.write_text("model\tfamily\tbackend\ntiny_models/s\tTinyLlama-test\ttpu\n")
    cfg = work / "bad.yaml"
    cfg.write_text(yaml.safe_dump({"evaluation": {"model_sheet": "bad_models.tsv"}}))
    proc = run_snakemake(work, "-n", "--configfile", "tests/eval/config.yaml", "bad.yaml", check=False)
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert "bad_models.tsv: row 2, field 'backend'" in out, out[-3000:]


@pytest.mark.slow
def test_example_config_plans_one_job_per_model_and_suite(tmp_path):
    # The example sheet's models need GPUs: plan as on a workstation that declares one.
    proc = run_snakemake(make_workdir(tmp_path / "work"), "-n", "--configfile", "config/evaluation-example.yaml",
                         "--resources", "gpu=1", "--quiet", "rules")
    sheet = load_model_sheet(ROOT / "config/models.tsv", SHEET_SCHEMA)
    example = yaml.safe_load((ROOT / "config/evaluation-example.yaml").read_text())["evaluation"]
    n_jobs = sum(len(model_suites(r, example["suites"])) for _, r in sheet.iterrows())
    out = proc.stdout + proc.stderr
    counts = {line.split()[0]: int(line.split()[1]) for line in out.splitlines()
              if len(line.split()) == 2 and line.split()[1].isdigit()}
    assert counts.get("eval_run") == n_jobs, out


def test_plan_lists_jobs_columns_and_resources(tmp_path):
    from obsscale.evaluation.plan import plan_evaluation

    settings = {"model_sheet": str(ROOT / "config/models.tsv"), "suites_file": str(ROOT / "config/suites.yaml"),
                "suites": ["base"], "default_resources": {"mem_gb": 2, "runtime_min": 30}}
    plan = plan_evaluation(settings, ROOT / "resources/obsscaling/families.yaml", SHEET_SCHEMA, SUITES_SCHEMA)
    assert plan.columns() == list(plan.suites["base"]["benchmarks"])
    assert "results/eval/runs/meta-llama__Llama-2-7b-hf/emergent.json" in plan.jobs()  # the row's own suites
    assert plan.resources("meta-llama__Llama-2-7b-hf") == {
        "gpu": 1, "gpu_model": "", "mem_mb": 64 * 1024, "runtime": 480, "threads": 8}  # vllm's CPUs
    assert plan.resources("EleutherAI__pythia-410m-deduped")["threads"] == 8  # the sheet's own
    assert plan.resources("EleutherAI__pythia-160m-deduped")["threads"] == 4  # hf's default

    sheet = write_sheet(tmp_path, "org/a\t\tLlama-2\t7\t2\t\thf\t0")
    sheet.write_text(sheet.read_text().replace("gpus\n", "gpus\tsuites\n").replace("\t0\n", "\t0\tbase,nope\n"))
    with pytest.raises(EvaluationConfigError, match=r"row 2, field 'suites': unknown suite 'nope'"):
        plan_evaluation({**settings, "model_sheet": str(sheet)}, ROOT / "resources/obsscaling/families.yaml",
                        SHEET_SCHEMA, SUITES_SCHEMA)
    plan = plan_evaluation({**settings, "model_sheet": str(write_sheet(tmp_path, "org/a\t\tLlama-2\t7\t2\t\thf\t0"))},
                           ROOT / "resources/obsscaling/families.yaml", SHEET_SCHEMA, SUITES_SCHEMA)
    assert plan.resources("org__a") == {  # config defaults
        "gpu": 0, "gpu_model": "", "mem_mb": 2048, "runtime": 30, "threads": 4}
