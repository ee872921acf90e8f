"""Where every result lives, and the workflow's final targets as a function of the config.

The path helpers below are the one spelling of each `results/...` file: the rule files name their
outputs with them (a wildcard is passed through as `"{name}"`), and `final_output(config)`, which
`rule all` asks for, lists the files each stage's config block turns on, so enabling an analysis
is a config change.  Kept here (not in the rule files) so that it is testable without Snakemake.
"""

from __future__ import annotations

import os
from typing import Any, Callable

# Figure stems of the capability stage (rendered by obsscale.figures.capability).  This module is
# imported when Snakemake parses the workflow, so it imports nothing heavy.
CAPABILITY_FIGURES = (
    "fig2a_explained_variance",
    "fig2b_loadings",
    "fig3_pc1_vs_flops_by_family",
    "figC2_pc2_vs_flops_by_family",
    "figC2_pc3_vs_flops_by_family",
    "fig8_pc1_vs_flops_all_families",
    "figC4_benchmarks_vs_flops",
)
INSTRUCT_FIGURES = ("figC1a_instruct_explained_variance", "figC1b_instruct_loadings")

Config = dict[str, Any]
FIGURE_EXTENSIONS = ("png", "pdf", "csv")
# Image formats of every figure (config `figure_formats`); the CSV of what it plots is always written.
DEFAULT_FIGURE_FORMATS = ("png",)


# ---------------------------------------------------------------------------------------------------
# Paths


def figure_file(stem: str, ext: str) -> str:
    return f"results/figures/{stem}.{ext}"


def figure_formats(config: Config | None) -> list[str]:
    """The image formats each figure is written in: `figure_formats` (PNG always), default PNG only."""
    formats = list((config or {}).get("figure_formats") or DEFAULT_FIGURE_FORMATS)
    return ["png"] + [f for f in formats if f != "png"]


def figure_files(stem: str, config: Config | None = None) -> list[str]:
    return [figure_file(stem, ext) for ext in (*figure_formats(config), "csv")]


def score_table(name: str) -> str:
    """A validated score table of `scores:` (rule `import_scores`)."""
    return f"results/scores/{name}.csv"


PCA_TABLES = ("explained_variance", "loadings", "scores", "imputed")


def pca_file(model_set: str, table: str, ext: str = "csv") -> str:
    """A table of a model set's capability space (rule `capability_pca`)."""
    return f"results/pca/{model_set}/{table}.{ext}"


# The tables of rule `family_laws`: the per-family laws of the PCs and of each raw benchmark on log10
# FLOPs, and their lines with bands (drawn by the capability figures).
FAMILY_LAW_TABLES = {
    "table": "pc_vs_log10_flops",
    "lines": "pc_lines",
    "benchmarks": "benchmarks_vs_log10_flops",
    "benchmark_lines": "benchmark_lines",
}


def family_laws_file(model_set: str, table: str = "table") -> str:
    """One table of rule `family_laws` for a model set (a key of FAMILY_LAW_TABLES)."""
    return f"results/family_laws/{model_set}/{FAMILY_LAW_TABLES[table]}.csv"


def family_laws_table(model_set: str) -> str:
    """The per-family PC vs log10 FLOPs laws of a model set (rule `family_laws`)."""
    return family_laws_file(model_set, "table")


FIT_TABLES = ("predictions", "curves", "reference_lines", "sweeps", "family_lines")


def fits_table(experiment: str) -> str:
    """One row per fitted law of an experiment (rule `fit_experiments`)."""
    return f"results/fits/{experiment}.csv"


def fit_file(experiment: str, table: str) -> str:
    """A per-model or per-grid table of an experiment's fits (`FIT_TABLES`)."""
    return f"results/fits/{experiment}/{table}.csv"


def prereg_json(experiment: str) -> str:
    """An experiment's frozen laws."""
    return f"results/prereg/{experiment}.json"


def prereg_scored(experiment: str) -> str:
    """Newer models scored against an experiment's frozen laws (rule `fit_experiments`)."""
    return f"results/prereg/{experiment}_scored.csv"


PREREG_TABLE = "results/prereg/table_c1.csv"
# Every file rule `fit_experiments` writes for one experiment (keys of `experiment_files`).
EXPERIMENT_FILES = ("fits", *FIT_TABLES, "prereg", "scored")


def experiment_files(experiment: str) -> dict[str, str]:
    """The files of one experiment: its fit table, the tables of FIT_TABLES, the frozen laws and the
    newer models scored against them."""
    return {"fits": fits_table(experiment), **{t: fit_file(experiment, t) for t in FIT_TABLES},
            "prereg": prereg_json(experiment), "scored": prereg_scored(experiment)}

# Model-subset selection (rule `selection`).
SELECTION_FILES = {
    "table": "results/selection/table1.csv",
    "heuristic": "results/selection/greedy_vs_exact.csv",
    "table_provenance": "results/selection/table1.provenance.json",
    "curve": "results/selection/curve.csv",
    "details": "results/selection/curve_details.csv",
    "predictions": "results/selection/subset_fits.csv",
    "curves": "results/selection/subset_curves.csv",
    "provenance": "results/selection/curve.provenance.json",
}


def prediction_table(name: str) -> str:
    """The predictions of one `predict.sets` entry (rule `predict`)."""
    return f"results/predictions/{name}.csv"


NMF_TABLES = ("components", "weights", "family_laws", "error_curve", "provenance")


def nmf_file(model_set: str, table: str) -> str:
    """A table of the NMF of a capability set's benchmark matrix (rule `nmf`)."""
    return f"results/nmf/{model_set}/{table}.{'json' if table == 'provenance' else 'csv'}"


def passuntil_dir(series: str, task: str) -> str:
    return f"results/passuntil/{series}/{task}"


def passuntil_samples(series: str, task: str, model: str) -> str:
    """The sample log of one model on one task (rule `passuntil_sample`)."""
    return f"{passuntil_dir(series, task)}/samples/{model}.jsonl"


def passuntil_file(series: str, task: str, table: str) -> str:
    """A table of a (series, task) run: estimates, summary, plan (rule `passuntil_estimate`), law,
    law_curves (rule `passuntil_law`)."""
    return f"{passuntil_dir(series, task)}/{table}.csv"


def eval_dir(name: str) -> str:
    return f"results/eval/{name}"


def eval_table(name: str, table: str) -> str:
    """The tidy or wide score table of an evaluation (`scores_tidy`, `scores_wide`)."""
    return f"{eval_dir(name)}/{table}.csv"


def eval_run_json(model: str, suite: str) -> str:
    """lm-eval's results of one model on one suite (rule `eval_run`)."""
    return f"results/eval/runs/{model}/{suite}.json"


def eval_cache_dir(model: str, suite: str) -> str:
    """lm-eval's response cache of one (model, suite), kept so that a killed job resumes inside it."""
    return f"results/eval/cache/{model}/{suite}"


# ---------------------------------------------------------------------------------------------------
# Final targets


def score_targets(config: Config) -> list[str]:
    return [score_table(name) for name in config.get("scores", {})]


def capability_targets(config: Config) -> list[str]:
    targets = []
    for name in config.get("capability_space", {}).get("sets", {}):
        targets += [pca_file(name, table) for table in PCA_TABLES]
    for name in config.get("family_laws", {}).get("sets", []):
        targets.append(family_laws_table(name))
    return targets


def capability_figure_stems(config: Config) -> list[str]:
    figs = config.get("capability_figures")
    if not figs:
        return []
    return list(CAPABILITY_FIGURES) + (list(INSTRUCT_FIGURES) if figs.get("instruct_set") else [])


def capability_figure_targets(config: Config) -> list[str]:
    return [f for stem in capability_figure_stems(config) for f in figure_files(stem, config)]


def nmf_targets(config: Config) -> list[str]:
    """NMF of the benchmark matrix (Fig C.19): its tables and figure; [] without an `nmf:` block."""
    nmf = config.get("nmf")
    if not nmf:
        return []
    tables = ("components", "weights", "family_laws", "error_curve")
    return [nmf_file(nmf["set"], t) for t in tables] + figure_files("figC19_nmf", config)


def enabled_experiments(config: Config) -> dict[str, dict]:
    """The experiments that run: every block of `experiments:` without `enabled: false`."""
    return {name: block for name, block in (config.get("experiments") or {}).items()
            if (block or {}).get("enabled", True)}


def overview_experiments(config: Config) -> list[str]:
    """Experiments that get an overview figure of all their fits (`overview`, default true)."""
    return [name for name, block in enabled_experiments(config).items()
            if (block or {}).get("overview", True)]


def law_targets(config: Config) -> list[str]:
    """Observational scaling laws: fits, predictions, frozen laws, Table C.1 and their figures."""
    experiments = list(enabled_experiments(config))
    if not experiments:
        return []
    targets = []
    for exp in experiments:
        targets += [fits_table(exp), fit_file(exp, "predictions"), prereg_json(exp), prereg_scored(exp)]
    targets.append(PREREG_TABLE)
    for stem in [*config.get("law_figures", []), *(f"fits_{exp}" for exp in overview_experiments(config))]:
        targets += figure_files(stem, config)
    return targets
def prediction_sets(config: Config) -> dict[str, dict]:
    """The `predict.sets` of the config (none unless `predict.enabled`)."""
    block = config.get("predict") or {}
    if not block.get("enabled", False) or not config.get("experiments"):
        return {}
    return dict(block.get("sets") or {})


def prediction_inputs(config: Config, name: str) -> dict[str, list[str]]:
    """Files a prediction set reads: its score tables (a `scores:` name means the validated table),
    the frozen laws of the experiments it names (all by default) and those experiments' target CSVs."""
    block = prediction_sets(config)[name]
    tables = config.get("scores", {})
    scores = block.get("scores") or list(tables)
    scores = [scores] if isinstance(scores, str) else scores
    laws = block.get("laws", "all")
    experiments = list(config.get("experiments") or {})
    if laws != "all":
        named = [str(law).split("/")[0] for law in ([laws] if isinstance(laws, str) else laws)]
        experiments = [e for e in experiments if e in named] + sorted(set(named) - set(experiments))
    inputs = {
        "scores": [f"results/scores/{s}.csv" if s in tables else s for s in scores],
        "prereg": [f"results/prereg/{e}.json" for e in experiments],
        "targets": sorted({config["experiments"][e]["data"]["targets_csv"] for e in experiments
                           if e in config["experiments"]}),
    }
    if config.get("families"):
        inputs["families"] = [config["families"]]
    if block.get("models") == "evaluated":  # the models the evaluation stage ran
        inputs["evaluated"] = [eval_table((config.get("evaluation") or {}).get("name", "models"), "scores_tidy")]
    return inputs


def prediction_targets(config: Config) -> list[str]:
    out = []
    for name in prediction_sets(config):
        out.append(prediction_table(name))
        out += figure_files(f"predictions_{name}", config)
    return out


PASSUNTIL_FIGURES = (
    "passuntil_pu_vs_n",
    "passuntil_loglog",
    "passuntil_instances",
    "passuntil_resolution",
    "passuntil_sampling_cost",
)


def passuntil_runs(config: Config) -> list[tuple[str, str]]:
    """(series, task) pairs of the PassUntil stage: `runs`, else every series with every task."""
    pu = config.get("passuntil") or {}
    if pu.get("runs"):
        return [(r["series"], r["task"]) for r in pu["runs"]]
    return [(s, t) for s in pu.get("series", {}) for t in pu.get("tasks", {})]


def passuntil_targets(config: Config) -> list[str]:
    pu = config.get("passuntil") or {}
    if not pu.get("enabled", False):
        return []
    out = []
    for series, task in passuntil_runs(config):
        out += [passuntil_samples(series, task, m["name"]) for m in pu["series"][series]["models"]]
        out += [passuntil_file(series, task, "estimates"), passuntil_file(series, task, "law")]
    return out + [f for stem in PASSUNTIL_FIGURES for f in figure_files(stem, config)]


def evaluation_targets(config: Config) -> list[str]:
    """The evaluation stage's tables (docs/evaluation.md); none unless `evaluation.enabled`."""
    ev = config.get("evaluation") or {}
    if not ev.get("enabled", False):
        return []
    return [eval_table(ev["name"], "scores_tidy"), eval_table(ev["name"], "scores_wide")]


SELECTION_FIGURES = ("fig7a_selection_curve", "fig7b_selected_fits", "figC18_random_fits")


def selection_targets(config: Config) -> list[str]:
    """Model-subset selection: the guide (Table 1) and, when enabled, the held-out evaluation."""
    cfg = config.get("selection") or {}
    if not cfg.get("enabled", False):
        return []
    targets = [SELECTION_FILES["table"]]
    if cfg.get("compare_heuristic", True):
        targets.append(SELECTION_FILES["heuristic"])
    if (cfg.get("evaluation") or {}).get("enabled", False):
        targets.append(SELECTION_FILES["curve"])
        targets += [f for stem in SELECTION_FIGURES for f in figure_files(stem, config)]
    return targets


def ladder_targets(config: Config) -> list[str]:
    """The ladder's trained models and its model sheet (docs/ladder.md); [] unless enabled."""
    ladder = config.get("ladder") or {}
    if not ladder.get("enabled", False):
        return []
    out = ladder.get("output_dir", "results/ladder")
    return [f"{out}/models/{m['name']}" for m in ladder.get("models", [])] + [f"{out}/models.tsv"]


# Each stage's contribution, in pipeline order.
STAGES: list[Callable[[Config], list[str]]] = [
    ladder_targets,
    evaluation_targets,
    score_targets,
    capability_targets,
    capability_figure_targets,
    nmf_targets,
    law_targets,
    prediction_targets,
    selection_targets,
    passuntil_targets,
]


def final_output(config: Config) -> list[str]:
    targets: list[str] = []
    for stage in STAGES:
        for target in stage(config):
            if target not in targets:
                targets.append(target)
    return targets


def export_library_path(src: str) -> None:
    """Put this checkout's library first on the PYTHONPATH that the rules' jobs inherit."""
    current = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (src, current) if p)
