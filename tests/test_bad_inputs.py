"""The catalogue of bad inputs: each stops with one InputError of one line that names the file and
line (and column or field) or the config key path, before anything is written.

Library cases call the checks directly (no job, no Snakemake); the last cases run `snakemake -n`
and check what a user sees: one line on stderr, exit status 1, no traceback, no results/."""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, SNAKEMAKE, make_workdir
from obsscale.capability import scores as D
from obsscale.core.errors import InputError
from obsscale.passuntil.tasks import PassUntilTask, TaskError, check_task_file, load_task
from obsscale.stages.validate import validate_config

BASE_CSV = ROOT / "resources/obsscaling/base_llm_benchmark_eval.csv"
FAMILIES = D.load_families(ROOT / "resources/obsscaling/families.yaml")
DEFAULT = yaml.safe_load((ROOT / "config/config.yaml").read_text())
DEFAULT.update(yaml.safe_load((ROOT / "config/figures.yaml").read_text()))  # the Snakefile's second configfile


def one_line(exc: BaseException) -> str:
    text = str(exc)
    assert "\n" not in text, text
    assert "Traceback" not in text
    return text


# ---- score tables ------------------------------------------------------------------------------

def table_lines() -> list[str]:
    return BASE_CSV.read_text().splitlines()


def write(path: Path, lines: list[str], encoding="utf-8") -> Path:
    path.write_bytes(("\n".join(lines) + "\n").encode(encoding))
    return path


def set_cell(line: str, column: str, value: str) -> str:
    cells = line.split(",")
    cells[table_lines()[0].split(",").index(column)] = value
    return ",".join(cells)


def read_error(path: Path) -> str:
    with pytest.raises(D.ScoreTableError) as info:
        D.read_score_table(path, D.BASE_METRICS, FAMILIES)
    return one_line(info.value)


def test_blank_lines_before_a_bad_cell_keep_the_physical_line(tmp_path):
    lines = table_lines()
    lines[20] = set_cell(lines[20], "MMLU", "zero")  # line 21 of the file
    lines[1:1] = ["", ""]  # two blank lines after the header: the bad cell is now on line 23
    msg = read_error(write(tmp_path / "t.csv", lines))
    assert "t.csv, line 23, column 'MMLU': 'zero' is not a number" in msg


def test_a_quoted_newline_counts_as_a_line(tmp_path):
    lines = table_lines()
    first = lines[1].split(",")
    first[0] = '"meta-llama/Llama-2-7b-hf\nsecond line"'
    lines[1] = ",".join(first)
    lines[20] = set_cell(lines[20], "MMLU", "zero")  # was line 21, now physical line 22
    msg = read_error(write(tmp_path / "t.csv", lines))
    assert "line 22, column" in msg


@pytest.mark.parametrize("change,expected", [
    (lambda row: row.rsplit(",", 2)[0], "line 5: row has 11 fields, fewer than the header's 13"),
    (lambda row: row + ",0.5", "line 5: row has 14 fields, more than the header's 13"),
])
def test_short_and_long_rows(tmp_path, change, expected):
    lines = table_lines()
    lines[4] = change(lines[4])
    assert expected in read_error(write(tmp_path / "t.csv", lines))


def test_duplicated_header(tmp_path):
    lines = table_lines()
    lines[0] = lines[0].replace("HumanEval", "MMLU")
    assert "line 1, column 'MMLU': duplicated column name" in read_error(write(tmp_path / "t.csv", lines))


def test_latin1_file_names_the_line(tmp_path):
    lines = table_lines()
    lines[6] = set_cell(lines[6], "Model", "modèle")
    msg = read_error(write(tmp_path / "t.csv", lines, encoding="latin-1"))
    assert "t.csv, line 7: not UTF-8 text" in msg


def test_a_column_with_no_observed_value_is_named(tmp_path):
    lines = table_lines()
    header = lines[0].split(",")
    i = header.index("GSM8K")
    for k in range(1, len(lines)):
        cells = lines[k].split(",")
        cells[i] = ""
        lines[k] = ",".join(cells)
    msg = read_error(write(tmp_path / "t.csv", lines))
    assert "line 1, column 'GSM8K': the column has no observed value" in msg


def test_a_folder_or_missing_path(tmp_path):
    (tmp_path / "dir.csv").mkdir()
    assert "dir.csv: is a folder" in read_error(tmp_path / "dir.csv")
    assert "nope.csv: file not found" in read_error(tmp_path / "nope.csv")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_an_unreadable_file(tmp_path):
    path = shutil.copy(BASE_CSV, tmp_path / "t.csv")
    os.chmod(path, 0)
    assert "cannot be read" in read_error(Path(path))


@pytest.mark.parametrize("row,cell,expected", [
    (3, lambda c: "abc", "line 3, column 'MMLU': 'abc' is not a number"),
    (4, lambda c: "1.5", "line 4, column 'MMLU': 1.5 is above the allowed range"),
    (5, lambda c: "-0.1", "line 5, column 'MMLU': -0.1 is below the allowed range"),
])
def test_bad_cells(tmp_path, row, cell, expected):
    lines = table_lines()
    cells = lines[row - 1].split(",")
    cells[5] = cell(cells[5])
    lines[row - 1] = ",".join(cells)
    assert expected in read_error(write(tmp_path / "t.csv", lines))


def test_duplicate_model_and_unknown_family(tmp_path):
    lines = table_lines()
    lines[3] = lines[2]
    assert "line 4, column 'Model': duplicate model" in read_error(write(tmp_path / "t.csv", lines))
    lines = table_lines()
    lines[3] = lines[3].replace("Llama-2", "Lama-2")
    assert "line 4, column 'Model Family': unknown family 'Lama-2'" in read_error(write(tmp_path / "t.csv", lines))


# ---- PassUntil task files ----------------------------------------------------------------------

TASK = """name: t
data: {path: d.jsonl}
prompt: "Q: {q}"
checker: {name: exact_match}
r: 2
K_max: 100
temperature: 1.0
batch: {initial: 4, growth: 2, max: 64}
"""


def task_error(tmp_path: Path, text: str, data: str = '{"id": 1, "q": "a", "answer": "x"}\n') -> str:
    (tmp_path / "d.jsonl").write_text(data)
    (tmp_path / "t.yaml").write_text(text)
    with pytest.raises(TaskError) as info:
        check_task_file(tmp_path / "t.yaml")
    return one_line(info.value)


@pytest.mark.parametrize("old,new,expected", [
    ("checker: {name: exact_match}\n", "", "field 'checker' is required"),
    ("{name: exact_match}", "{name: exact_mach}", "line 4, field 'checker': "),
    ("r: 2", "r: 0", "line 5, field 'r': must be an integer >= 1, got 0"),
    ("r: 2", 'r: "two"', "line 5, field 'r': must be an integer >= 1, got 'two'"),
    ("r: 2", "r: 2.5", "line 5, field 'r': must be an integer >= 1, got 2.5"),
    ("K_max: 100", "K_max: 1", "line 6, field 'K_max': must be >= r (2), got 1"),
    ("temperature: 1.0", "temperature: -1", "line 7, field 'temperature': must be a number >= 0"),
    ("{initial: 4,", "{initail: 4,", "line 8, field 'batch.initail': unknown field; did you mean 'initial'?"),
    ("max: 64}", "max: 0}", "line 8, field 'batch.max': must be an integer >= 1, got 0"),
    ("prompt:", "promt:", "line 3, field 'promt': unknown field; did you mean 'prompt'?"),
])
def test_task_yaml_fields(tmp_path, old, new, expected):
    assert old in TASK
    msg = task_error(tmp_path, TASK.replace(old, new))
    assert msg.startswith(str(tmp_path / "t.yaml")) and expected in msg


@pytest.mark.parametrize("data,expected", [
    ('{"id": 1, "q": "a"}\n\n{"id": 1, "q": "b"}\n', "d.jsonl: line 3, field 'id': duplicate id 1 (first on line 1)"),
    ('{"id": 1, "q": "a"}\n{"id": 2, "q": \n', "d.jsonl: line 2: not JSON"),
    ('{"id": 1, "x": "a"}\n', "field 'prompt': uses field 'q' missing in instance 0"),
    ("", "d.jsonl: no instances"),
])
def test_task_data_files(tmp_path, data, expected):
    assert expected in task_error(tmp_path, TASK, data)


def test_missing_data_file(tmp_path):
    (tmp_path / "t.yaml").write_text(TASK.replace("d.jsonl", "none.jsonl"))
    with pytest.raises(TaskError, match="none.jsonl: data file not found"):
        load_task(tmp_path / "t.yaml")


def test_a_round_that_draws_nothing_is_an_error(tmp_path):
    from obsscale.passuntil.backends import SimulatedBackend
    from obsscale.passuntil.sampling import pass_until

    with pytest.raises(TaskError, match="batch needs"):
        PassUntilTask(name="t", instances=[{"id": 1, "p": 0.1}], prompt="{p}", checker_spec="exact_match",
                      batch={"initial": 1, "growth": 2, "max": 0})
    task = PassUntilTask(name="t", instances=[{"id": 1, "p": 0.0}], prompt="{p}",
                         checker_spec="exact_match", greedy=False)
    task.batch["max"] = 0  # bypassing the checks: the engine itself must not loop
    with pytest.raises(TaskError, match="round 0 draws no sample"):
        pass_until(task, SimulatedBackend(), "m", tmp_path / "log.jsonl", progress=False)


# ---- the config ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return make_workdir(tmp_path_factory.mktemp("bad-config"))


def small_config() -> dict:
    """The default config with one experiment and without the selection stage (fast to check)."""
    cfg = copy.deepcopy(DEFAULT)
    cfg["experiments"] = {"emergent": cfg["experiments"]["emergent"]}
    cfg["selection"]["enabled"] = False
    cfg["law_figures"] = {}
    return cfg


def config_error(workdir: Path, monkeypatch, edit) -> str:
    cfg = small_config()
    edit(cfg)
    monkeypatch.chdir(workdir)
    with pytest.raises(InputError) as info:
        validate_config(cfg, ROOT)
    return one_line(info.value)


def _exp(cfg):
    return cfg["experiments"]["emergent"]


CONFIG_CASES = {
    "unknown top-level key": (lambda c: c.update(bogus=1), "config bogus: unknown key"),
    "misspelt experiment key": (lambda c: _exp(c).update(targts=[]),
                                "config experiments.emergent.targts: unknown key; did you mean 'targets'?"),
    "typo inside selection": (lambda c: c["selection"].update(budget=[4]),
                              "config selection.budget: unknown key; did you mean 'budgets'?"),
    "imputation typo": (lambda c: _exp(c).update(imputation={"max_iters": 5}),
                        "config experiments.emergent.imputation.max_iters: unknown key"),
    "split by an unknown column": (
        lambda c: _exp(c).update(split={"by": "cutoff", "column": "FLOP", "threshold": 84}),
        "config experiments.emergent.split.column: 'FLOP' is not a column"),
    "reference model not in the table": (
        lambda c: _exp(c).update(split={"by": "cutoff", "column": "FLOPs (1E21)", "reference_model": "x/y"}),
        "config experiments.emergent.split.reference_model: 'x/y' is not a model of score table 'base'"),
    "0 training models": (
        lambda c: _exp(c).update(split={"by": "cutoff", "column": "FLOPs (1E21)", "threshold": 1e-6}),
        "config experiments.emergent.split: leaves no training model for target 'word_unscramble'"),
    "capability set with an unknown table": (
        lambda c: c["capability_space"]["sets"]["base8"].update(scores="bsae"),
        "config capability_space.sets.base8.scores: 'bsae' is not a score table of `scores:`"),
    "family laws of an unknown set": (lambda c: c["family_laws"].update(sets=["base9"]),
                                      "config family_laws.sets[0]: 'base9' is not a set"),
    "figure panel of an unknown experiment": (
        lambda c: c.update(law_figures={"fig99": {"section": "x", "builder": "fit_grid",
                                                   "panels": [["emergnt/word_unscramble/PC-1..3"]]}}),
        "law_figures.fig99.panels[0][0]: experiment 'emergnt' is not configured"),
    "figure of an unknown builder": (
        lambda c: c.update(law_figures={"fig99": {"section": "x", "builder": "grid_of_fits",
                                                   "panels": [["emergent/word_unscramble/PC-1..3"]]}}),
        "config law_figures.fig99.builder: 'grid_of_fits' is not one of"),
    "more PCs than stored": (lambda c: _exp(c).update(predictors=["PC-1..12"]),
                             "config experiments.emergent.predictors[0]: 'PC-1..12' needs 12 components, but only 5"),
    "count that is not an integer": (lambda c: c["laws"].update(n_boot=2.5),
                                     "config laws.n_boot: 2.5 is not of type 'integer'"),
    "score path is a folder": (lambda c: c["scores"]["base"].update(path="resources"),
                               "resources: is a folder, not a CSV file"),
    "unknown split kind": (lambda c: _exp(c).update(split={"by": "cutof"}),
                           "config experiments.emergent.split.by: 'cutof' is not one of"),
}


@pytest.mark.parametrize("case", list(CONFIG_CASES))
def test_config_catalogue(workdir, monkeypatch, case):
    edit, expected = CONFIG_CASES[case]
    assert expected in config_error(workdir, monkeypatch, edit)


def test_the_shipped_configs_pass(workdir, monkeypatch):
    monkeypatch.chdir(workdir)
    validate_config(copy.deepcopy(DEFAULT), ROOT)


def test_passuntil_and_model_sheet_are_checked(workdir, monkeypatch):
    bad_task = workdir / "bad_task.yaml"
    bad_task.write_text(TASK.replace("r: 2", "r: 0").replace("d.jsonl", "../resources/passuntil/date_mini.jsonl"))

    def passuntil(c):
        c["passuntil"].update(enabled=True, tasks={"bad": "bad_task.yaml"},
                              series={"s": {"models": [{"name": "m", "path": "EleutherAI/pythia-70m", "N": 1}]}})
    msg = config_error(workdir, monkeypatch, passuntil)
    assert msg.startswith("bad_task.yaml: line 5, field 'r'")

    def local_model(c):
        c["passuntil"].update(enabled=True, tasks={},
                              series={"s": {"models": [{"name": "m", "path": "./models/none", "N": 1}]}})
    assert "config passuntil.series.s.models[0].path: no model folder './models/none'" in config_error(
        workdir, monkeypatch, local_model)

    sheet = workdir / "sheet.tsv"
    sheet.write_text("model\tfamily\tparams_b\ttokens_t\n./ckpt/missing\tLlama-2\t7\t2\n")

    def evaluation(c):
        c["evaluation"].update(enabled=True, model_sheet=str(sheet))
    assert "sheet.tsv: row 2, field 'model': no model folder './ckpt/missing'" in config_error(
        workdir, monkeypatch, evaluation)


@pytest.mark.parametrize("text,expected", [
    ("model\tfamily\tparams_b\n./x\tLlama-2\tabc\n", "row 2, field 'params_b': 'abc' is not a number"),
    ("model\tfamily\tsize\n./x\tLlama-2\t1\n", "row 1: unknown column 'size'"),
    ("model\tfamily\n./x\tLlama-2\textra\n", "row 2: 3 tab-separated cells, the header has 2"),
    ("model\tfamily\nm\u00e9\tLlama-2\n".encode("latin-1"), "sheet.tsv: line 2: not UTF-8 text"),
    (None, "config evaluation.model_sheet: 'sheet.tsv' is a folder"),
])
def test_model_sheet_errors(tmp_path, monkeypatch, text, expected):
    work = make_workdir(tmp_path / "w")
    sheet = work / "sheet.tsv"
    if text is None:
        sheet.mkdir()
    elif isinstance(text, bytes):
        sheet.write_bytes(text)
    else:
        sheet.write_text(text)
    msg = config_error(work, monkeypatch, lambda c: c["evaluation"].update(enabled=True, model_sheet="sheet.tsv"))
    assert expected in msg


def test_families_file_that_is_not_yaml(workdir, monkeypatch):
    (workdir / "fam.yaml").write_text("eval_base_families: [a, b\nadded_later: []\n")
    msg = config_error(workdir, monkeypatch, lambda c: c.update(families="fam.yaml"))
    assert msg.startswith("fam.yaml, line 2: not valid YAML")


# ---- what the user sees: snakemake -n ------------------------------------------------------------

SNAKEMAKE_CASES = {
    "config key": ("config.yaml", lambda c: c.update(bogus=1), "Error: config bogus: unknown key"),
    "score table": ("table", None, "line 5: row has 11 fields"),
    "task file": ("task", None, "field 'batch.max': must be an integer >= 1, got 0"),
}


@pytest.mark.parametrize("case", list(SNAKEMAKE_CASES))
def test_dry_run_prints_one_line(tmp_path, case):
    what, edit, expected = SNAKEMAKE_CASES[case]
    work = make_workdir(tmp_path / "w")
    cfg = yaml.safe_load((work / "config/config.yaml").read_text())
    if what == "config.yaml":
        edit(cfg)
    elif what == "table":
        lines = (work / cfg["scores"]["base"]["path"]).read_text().splitlines()
        lines[4] = lines[4].rsplit(",", 2)[0]
        (work / cfg["scores"]["base"]["path"]).write_text("\n".join(lines) + "\n")
    else:
        task = work / "config/passuntil/tasks/date_mini.yaml"
        task.write_text(task.read_text().replace("max: 1024", "max: 0"))
        cfg["passuntil"].update(enabled=True, series={
            "s": {"models": [{"name": "m", "path": "EleutherAI/pythia-70m", "N": 1}]}})
    (work / "config/config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    proc = subprocess.run([*SNAKEMAKE, "-s", str(ROOT / "Snakefile"), "--directory", str(work), "-n",
                           "--cores", "1"], capture_output=True, text=True, cwd=work, timeout=300)
    assert proc.returncode == 1
    # Snakemake itself names the workflow profile (profiles/default) it reads on every start.
    profile_note = "Using workflow specific profile"
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip() and not ln.startswith(profile_note)]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("Error: ") and expected in lines[0], lines[0]
    assert not (work / "results").exists()


# ---- running only some experiments -------------------------------------------------------------

def test_disabled_and_dropped_experiments(workdir, monkeypatch):
    from snakemake.utils import update_config

    from obsscale.stages.outputs import enabled_experiments, final_output

    monkeypatch.chdir(workdir)
    cfg = copy.deepcopy(DEFAULT)
    update_config(cfg, {"law_figures": [], "experiments": {
        name: {"enabled": False} for name in DEFAULT["experiments"] if name != "agentic"}})
    validate_config(cfg, ROOT)
    assert list(enabled_experiments(cfg)) == ["agentic"]
    fits = [t for t in final_output(cfg) if t.startswith("results/fits/")]
    assert fits == ["results/fits/agentic.csv", "results/fits/agentic/predictions.csv"]
    update_config(cfg, {"experiments": None})
    validate_config(cfg, ROOT)
    assert not [t for t in final_output(cfg) if t.startswith(("results/fits/", "results/prereg/"))]
