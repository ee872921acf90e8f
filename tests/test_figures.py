"""Figures: they only read (no figure module imports a fitting module), they are config (ids map to
builders and panels, checked against the experiments when the workflow is parsed), forms are printed
as the paper prints them, and the report's captions render without docutils warnings."""

from __future__ import annotations

import ast
import copy
import io
import logging
from pathlib import Path

import pytest
import yaml

from obsscale.core.errors import ConfigError
from obsscale.figures.spec import assign_jobs, report_subcategory, resolve_law_figures

ROOT = Path(__file__).resolve().parents[1]
FIGURES_PACKAGE = ROOT / "src/obsscale/figures"
CONFIG = yaml.safe_load((ROOT / "config/config.yaml").read_text())
CONFIG.update(yaml.safe_load((ROOT / "config/figures.yaml").read_text()))

# Modules that fit something: a figure importing one of them could show a law the stage never wrote.
FITTING_MODULES = (
    "obsscale.laws", "obsscale.capability.family_laws", "obsscale.capability.pca", "obsscale.capability.impute",
    "obsscale.capability.space", "obsscale.passuntil.laws", "obsscale.passuntil.estimators",
    "obsscale.selection", "obsscale.stages", "obsscale.core.stats", "scipy.optimize", "scipy.stats",
    "statsmodels", "sklearn",
)


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names |= {f"{node.module}.{a.name}" for a in node.names}
    return names


@pytest.mark.parametrize("module", sorted(FIGURES_PACKAGE.glob("*.py")), ids=lambda p: p.name)
def test_no_figure_module_imports_a_fitting_module(module):
    bad = sorted(n for n in _imports(module) if any(n == m or n.startswith(m + ".") for m in FITTING_MODULES))
    assert not bad, f"{module.name} imports {bad}"


def test_the_import_check_would_catch_a_fitting_import(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("def f():\n    from obsscale.laws.law import ReferenceLine\n    import scipy.optimize\n")
    found = _imports(probe)
    assert "obsscale.laws.law.ReferenceLine" in found and "scipy.optimize" in found


# ---------------------------------------------------------------------------------------------------
# Figures as config


def test_every_configured_figure_resolves_and_has_a_builder_and_a_caption():
    from obsscale.figures.laws import BUILDERS

    specs = resolve_law_figures(CONFIG)
    assert {"fig4", "fig5", "fig6", "fig9", "figC3", "figC22"} <= set(specs)
    for fid, spec in specs.items():
        assert spec.builder in BUILDERS, fid
        assert spec.section, fid
        assert (ROOT / f"workflow/report/{fid}.rst").exists(), fid
    fig4 = specs["fig4"]
    assert [len(r) for r in fig4.panels] == [4, 4]
    assert fig4.panels[1][0] == ("emergent", "word_unscramble", "PC-1..3")


def test_schema_lists_exactly_the_registered_builders():
    from obsscale.figures.laws import BUILDERS

    schema = yaml.safe_load((ROOT / "workflow/schemas/config.schema.yaml").read_text())
    entry = schema["properties"]["law_figures"]["additionalProperties"]
    assert sorted(entry["properties"]["builder"]["enum"]) == BUILDERS.names()
    assert entry["additionalProperties"] is False


def test_default_predictors_agree_with_the_experiment_defaults():
    from obsscale.figures.spec import DEFAULT_PREDICTORS
    from obsscale.laws.spec import DEFAULTS

    assert list(DEFAULT_PREDICTORS) == DEFAULTS["predictors"]


def _renamed(config: dict, old: str, new: str) -> dict:
    cfg = copy.deepcopy(config)
    cfg["experiments"][new] = cfg["experiments"].pop(old)
    return cfg


@pytest.mark.parametrize("mutate, message", [
    (lambda c: _renamed(c, "emergent", "emergent_tasks"),
     r"law_figures\.fig4\.panels\[0\]\[0\]: experiment 'emergent' is not configured .*did you mean 'emergent_tasks'"),
    (lambda c: c["experiments"]["agentic"].update(targets=[{"name": "agent_bench", "column": "x"},
                                                           {"name": "agentboard", "column": "y"}]),
     r"law_figures\.fig5\.panels\[0\]\[0\]: target 'agentbench' is not a target of experiment 'agentic'"),
    (lambda c: c["experiments"]["agentic"].update(predictors=["PC-1..3", "PC-1"]),
     r"law_figures\.figC9\.panels\[0\]\[1\]: predictor set 'PC-1\.\.2' is not fitted in experiment 'agentic'"),
    (lambda c: c["law_figures"]["figC10"]["sweeps"][0].update(sweep="flops"),
     r"law_figures\.figC10\.sweeps\[0\]\.sweep: sweep 'flops' is not a sweep of experiment 'post_training'"),
    (lambda c: c["law_figures"]["fig4"]["panels"][0].__setitem__(1, "emergent/persian_qa"),
     r"law_figures\.fig4\.panels\[0\]\[1\]: 'emergent/persian_qa' is not a panel"),
    (lambda c: c["law_figures"]["fig4"].update(job=5),
     r"law_figures\.fig4\.job: 5 is not in 0 … 1"),
])
def test_a_panel_naming_a_missing_name_is_an_error_at_load(mutate, message):
    cfg = copy.deepcopy(CONFIG)
    out = mutate(cfg)
    cfg = out if isinstance(out, dict) else cfg
    with pytest.raises(ConfigError, match=message):
        resolve_law_figures(cfg)


def test_renaming_an_experiment_is_a_config_change_only():
    cfg = _renamed(CONFIG, "post_training", "gsm8k_interventions")
    text = yaml.safe_dump(cfg["law_figures"]).replace("post_training/", "gsm8k_interventions/") \
        .replace("experiment: post_training", "experiment: gsm8k_interventions")
    cfg["law_figures"] = yaml.safe_load(text)
    specs = resolve_law_figures(cfg)
    assert specs["fig6"].panels[0][0].experiment == "gsm8k_interventions"


def test_jobs_follow_from_ids_and_costs_not_from_list_order():
    costs = {"fig4": 8, "figC8": 20, "fig9": 1, "figC7": 15, "fits_x": 4}
    jobs = assign_jobs(costs, 2)
    assert assign_jobs(dict(reversed(list(costs.items()))), 2) == jobs
    loads = [sum(c for f, c in costs.items() if jobs[f] == j) for j in range(2)]
    assert max(loads) - min(loads) <= max(costs.values())
    assert assign_jobs(costs, 2, fixed={"fig9": 1})["fig9"] == 1
    # Adding a figure moves no figure that is pinned.
    assert assign_jobs({**costs, "figC99": 3}, 2, fixed={"figC8": 0})["figC8"] == 0


def test_report_subcategories_sort_in_paper_order():
    labels = [report_subcategory(s) for s in ("figC3", "figC11", "fig4", "figC1a_instruct_explained_variance")]
    assert sorted(labels) == ["Fig 4", "Fig C.01a", "Fig C.03", "Fig C.11"]


# ---------------------------------------------------------------------------------------------------
# Forms as the paper prints them


@pytest.mark.parametrize("args, expected", [
    (([2.0], -6.11), "sigmoid(2.00x − 6.11)"),                          # spec §9, word unscramble
    (([1.04], -7.03), "sigmoid(1.04x − 7.03)"),                         # spec §9, ln FLOPs baseline
    (([6.74, -3.22, -1.37], 0.31, 1.0, ["PC1", "PC2", "PC3"]), "sigmoid(6.74 PC1 − 3.22 PC2 − 1.37 PC3 + 0.31)"),
    (([1.09], -4.77, 0.9996), "sigmoid(1.09x − 4.77)"),                 # floor fitted at 0: no h
    (([1.09], -4.77, 0.996), "sigmoid(1.09x − 4.77)"),                  # h = 1.00 at printed precision
    (([1.2], -2.71, 0.93), "0.93·sigmoid(1.20x − 2.71) + 0.07"),
    (([0.45, -0.2], -1.234, 1.0, ["MMLU", "GSM8K"], True), "sigmoid(−1.23 + 0.45 MMLU − 0.20 GSM8K)"),
    (([-2.0], -0.001), "sigmoid(−2.00x + 0.00)"),                        # no "− 0.00"
])
def test_forms_are_printed_as_the_paper_prints_them(args, expected):
    from obsscale.laws.law import format_form

    assert format_form(*args) == expected


# ---------------------------------------------------------------------------------------------------
# Report


@pytest.mark.parametrize("caption", sorted((ROOT / "workflow/report").glob("*.rst")), ids=lambda p: p.name)
def test_captions_render_without_docutils_messages(caption):
    from docutils.core import publish_parts

    warnings = io.StringIO()
    html = publish_parts(caption.read_text(), writer="html", settings_overrides={"warning_stream": warnings})
    assert "System Message" not in html["body"], warnings.getvalue()


def test_the_caption_check_would_catch_a_bare_star():
    from docutils.core import publish_parts

    html = publish_parts("pre-registered (green *)", writer="html",
                         settings_overrides={"warning_stream": io.StringIO()})["body"]
    assert "System Message" in html


def test_every_report_figure_has_a_section():
    from obsscale.figures.spec import OTHER_SECTION, report_section
    from obsscale.stages.outputs import CAPABILITY_FIGURES, INSTRUCT_FIGURES, SELECTION_FIGURES

    for stem in (*CAPABILITY_FIGURES, *INSTRUCT_FIGURES, *SELECTION_FIGURES, *CONFIG["law_figures"]):
        assert report_section(stem, CONFIG) != OTHER_SECTION, stem


# ---------------------------------------------------------------------------------------------------
# Log noise


def test_expected_degenerate_fits_are_counted_not_repeated(caplog):
    from obsscale.core.io import tallied_warnings

    law_log = logging.getLogger("obsscale.laws.law")
    with caplog.at_level(logging.WARNING):
        with tallied_warnings("degenerate", "obsscale.laws.law") as (tally,):
            for _ in range(16):
                law_log.warning("sigmoid_floor law fit (huber, n=4): degenerate: parameters not identifiable")
            law_log.warning("sigmoid law fit (least_squares, n=40): diverged")
    assert tally.count == 16
    assert [r.getMessage() for r in caplog.records] == ["sigmoid law fit (least_squares, n=40): diverged"]
    law_log.warning("after the block: degenerate")
    assert caplog.records[-1].getMessage() == "after the block: degenerate"


def test_figure_config_is_checked_by_the_closed_schema():
    from snakemake.exceptions import WorkflowError
    from snakemake.utils import validate

    schema = str(ROOT / "workflow/schemas/config.schema.yaml")
    validate(copy.deepcopy(CONFIG), schema)
    bad = copy.deepcopy(CONFIG)
    bad["law_figures"]["fig4"]["panel"] = bad["law_figures"]["fig4"].pop("panels")
    with pytest.raises(WorkflowError, match="panel"):
        validate(bad, schema)
    bad = copy.deepcopy(CONFIG)
    bad["law_figures"]["fig4"]["builder"] = "grid"
    with pytest.raises(WorkflowError, match="grid"):
        validate(bad, schema)


# ---------------------------------------------------------------------------------------------------
# What the stages write so that the figures only read


def test_family_laws_write_the_lines_and_bands_the_figures_draw():
    import numpy as np
    import pandas as pd

    from obsscale.capability.family_laws import FamilyLaws

    rng = np.random.default_rng(0)
    rows = []
    for fam, (w, b) in {"A": (0.5, -1.0), "B": (0.2, 0.3)}.items():
        for x in np.linspace(0, 2, 6):
            rows.append({"Model Family": fam, "FLOPs (1E21)": 10 ** x, "PC-1": w * x + b + rng.normal(0, 0.01)})
    laws = FamilyLaws(components=["PC-1"]).fit(pd.DataFrame(rows))
    lines = laws.lines(n=20)
    assert set(lines["family"]) == {"A", "B"} and len(lines) == 40
    a = lines[lines["family"] == "A"]
    assert a["x"].min() < 0 < 2 < a["x"].max()  # the fitted range widened by 7 % on each side
    assert (a["low"] <= a["mean"]).all() and (a["mean"] <= a["high"]).all()
    assert np.allclose(a["mean"], 0.5 * a["x"] - 1.0, atol=0.03)


def test_fit_stage_writes_per_family_index_lines():
    import numpy as np
    import pandas as pd

    from obsscale.laws.experiments import family_index_lines

    x = np.linspace(0, 2, 5)
    preds = pd.DataFrame({
        "experiment": "e", "target": "t", "predictors": "PC-1..3", "Model": [f"m{i}" for i in range(10)],
        "Model Family": ["A"] * 5 + ["B"] * 5, "log10_flops": np.r_[x, x], "index": np.r_[2 * x - 1, x[:4], 9.0]})
    both = pd.concat([preds, preds.assign(predictors="log10_flops")], ignore_index=True)
    lines = family_index_lines(both).set_index("family")
    assert set(lines["predictors"]) == {"PC-1..3"}  # compute baselines have no capability index
    assert lines.loc["A", ["slope", "intercept", "r2"]].tolist() == pytest.approx([2.0, -1.0, 1.0])
    assert lines.loc["A", "y_at_max"] == pytest.approx(3.0) and lines.loc["B", "r2"] < 1


def test_workflow_stops_at_parse_time_on_a_panel_of_a_renamed_experiment(tmp_path):
    from conftest import make_workdir, run_snakemake

    work = make_workdir(tmp_path / "work")
    (work / "renamed.yaml").write_text(yaml.safe_dump({"law_figures": {"fig9": {
        "section": "4.3 Post-training interventions", "builder": "reference_families",
        "panels": [["post_training_v2/gsm8k_cot/PC-1..3"]]}}}))
    proc = run_snakemake(work, "-n", "--configfile", "config/config.yaml", "config/figures.yaml", "renamed.yaml",
                         check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "law_figures.fig9.panels[0][0]: experiment 'post_training_v2' is not configured" in out
    assert "did you mean 'post_training'" in out and "Traceback" not in out
    assert not (work / "results").exists()
