# Shared helpers of the rules.  The final targets are computed by the library
# (obsscale.stages.outputs.final_output) from the config, so turning an analysis on or off is a config
# change.

import sys

# The rules' scripts (and this workflow's own imports) use the library of this checkout, in a venv
# or in the rules' conda environments alike, which pin only the third-party dependencies.
SRC = f"{workflow.basedir}/src"
sys.path.insert(0, SRC)

from obsscale.stages.outputs import (
    FIT_TABLES,
    PASSUNTIL_FIGURES,
    PCA_TABLES,
    PREREG_TABLE,
    SELECTION_FIGURES,
    SELECTION_FILES,
    capability_figure_stems,
    export_library_path,
    figure_file,
    experiment_files,
    figure_formats,
    final_output,
    fit_file,
    fits_table,
    overview_experiments,
    passuntil_file,
    passuntil_samples,
    eval_cache_dir,
    eval_run_json,
    eval_table,
    passuntil_runs,
    pca_file,
    prediction_inputs,
    prediction_sets,
    score_table,
    family_laws_file,
    nmf_file,
    NMF_TABLES,
    FAMILY_LAW_TABLES,
    prediction_table,
)
from snakemake.exceptions import WorkflowError

from obsscale.core.errors import ConfigError
from obsscale.figures.spec import (
    TABLES_SECTION,
    assign_jobs,
    law_figure_jobs,
    overview_cost,
    report_section,
    report_subcategory,
    resolve_law_figures,
)

export_library_path(SRC)

ANALYSIS_ENV = "../../envs/analysis.yaml"
EVAL_ENV = "../../envs/eval.yaml"
# The rules' GPU jobs with vLLM: the GPU dependency set (requirements-gpu.txt).
EVAL_GPU_ENV = "../../envs/eval-gpu.yaml"

# Cheap analysis rules run on the submitting node of a cluster (`localrule: LOCAL_ANALYSIS`);
# `cluster: {local_analysis: false}` submits them as jobs too (docs/cluster.md).
LOCAL_ANALYSIS = bool(config.get("cluster", {}).get("local_analysis", True))
FIGURE_FORMATS = figure_formats(config)
# Threads of the analysis jobs that parallelise inside (fits, selection): half the cores given, so
# that another job runs beside them; 1 where no core count is given (e.g. --unlock, a cluster).
HALF_THE_CORES = max(1, (workflow.resource_settings.cores or 1) // 2)


def get_final_output():
    return final_output(config)


def figure_outputs(stem, caption=None, subcategory=None, category=None):
    """The files every figure writes: PNG (in the report, grouped by paper section), PDF unless
    `figure_formats` leaves it out, and the CSV it plots."""
    outputs = {
        "png": report(
            figure_file(stem, "png"),
            caption=caption or f"../report/{stem}.rst",
            category=category or report_section(stem, config),
            subcategory=subcategory or report_subcategory(stem),
        ),
        "csv": figure_file(stem, "csv"),
    }
    if "pdf" in FIGURE_FORMATS:
        outputs["pdf"] = figure_file(stem, "pdf")
    return outputs


def figures_outputs(*stems):
    """Named outputs for several figures at once: `<stem>__png`, `__pdf`, `__csv`."""
    outputs = {}
    for stem in stems:
        for ext, path in figure_outputs(stem).items():
            outputs[f"{stem}__{ext}"] = path
    return outputs


def capability_set(name):
    return config["capability_space"]["sets"][name]


def capability_figure_inputs(wildcards):
    figs = config["capability_figures"]
    base = figs["base_set"]
    inputs = {
        "families": config["families"],
        "base_scores": pca_file(base, "scores"),
        "base_explained_variance": pca_file(base, "explained_variance"),
        "base_loadings": pca_file(base, "loadings"),
        "base_table": score_table(capability_set(base)["scores"]),
        # The per-family lines are the family-law stage's: the figures only draw them.
        "family_laws": family_laws_file(base, "table"),
        "family_lines": family_laws_file(base, "lines"),
        "benchmark_laws": family_laws_file(base, "benchmarks"),
        "benchmark_lines": family_laws_file(base, "benchmark_lines"),
    }
    if figs.get("instruct_set"):
        inputs["instruct_explained_variance"] = pca_file(
            figs["instruct_set"], "explained_variance"
        )
        inputs["instruct_loadings"] = pca_file(figs["instruct_set"], "loadings")
    return inputs


# PassUntil (workflow/rules/passuntil.smk).
PU = config.get("passuntil", {})


def passuntil_model(series, name):
    for m in PU["series"][series]["models"]:
        if m["name"] == name:
            return m
    raise ValueError(f"passuntil: model {name!r} is not in series {series!r}")


def passuntil_models(series):
    # Ordered by N so that the held-out models are the largest.
    return sorted(PU["series"][series]["models"], key=lambda m: float(m["N"]))


def passuntil_default_threads():
    from obsscale.stages.cluster import default_threads

    return default_threads(PU.get("backend", {}).get("name", "hf"))


def passuntil_figure_inputs(wildcards=None):
    runs = passuntil_runs(config)
    return {
        "estimates": [passuntil_file(s, t, "estimates") for s, t in runs],
        "summary": [passuntil_file(s, t, "summary") for s, t in runs],
        "law": [passuntil_file(s, t, "law") for s, t in runs],
        "curves": [passuntil_file(s, t, "law_curves") for s, t in runs],
    }


# Scaling-law stage (rules/fits.smk).


def all_experiment_inputs(wildcards):
    """Every experiment's score table and targets, and the families file (rule fit_experiments)."""
    blocks = config["experiments"].values()
    return {
        "scores": sorted({score_table(b["data"]["scores"]) for b in blocks}),
        "targets": sorted({b["data"]["targets_csv"] for b in blocks}),
        "families": config["families"],
    }


def experiment_outputs():
    outputs = {}
    for name in config["experiments"]:
        for key, path in experiment_files(name).items():
            if key == "fits":
                path = report(
                    path,
                    caption="../report/fit_table.rst",
                    category=TABLES_SECTION,
                    subcategory="Fit tables",
                )
            outputs[f"{name}__{key}"] = path
    return outputs


def experiment_params():
    """Each experiment's block, inputs and outputs, as obsscale.stages.fits.write_all_fits takes them."""
    return {
        name: {
            "block": block,
            "scores": score_table(block["data"]["scores"]),
            "targets": block["data"]["targets_csv"],
            **experiment_files(name),
        }
        for name, block in config["experiments"].items()
    }


# The paper figures of config/figures.yaml, every panel checked against `experiments:` here, when
# the workflow is parsed: a panel naming a missing experiment stops the run before any job.
try:
    LAW_FIGURES = resolve_law_figures(config)
except ConfigError as exc:
    raise WorkflowError(str(exc)) from None


# Drawing is CPU-bound (text layout dominates), so the figures are split over a few jobs that run
# in parallel; each job still starts Python only once for many figures.  A figure's job follows
# from the ids and panel counts (or its `job:`), not from its position in the config.
LAW_FIGURE_JOBS = law_figure_jobs(config)
LAW_FIGURE_JOB_OF = assign_jobs(
    {
        **{fid: spec.cost for fid, spec in LAW_FIGURES.items()},
        **{
            f"fits_{exp}": overview_cost(config["experiments"][exp])
            for exp in overview_experiments(config)
        },
    },
    LAW_FIGURE_JOBS,
    fixed={fid: spec.job for fid, spec in LAW_FIGURES.items() if spec.job is not None},
)


def law_figure_stems(job):
    return sorted(stem for stem, j in LAW_FIGURE_JOB_OF.items() if j == job)


def law_figure_outputs(job):
    outputs = {}
    for stem in law_figure_stems(job):
        if stem.startswith("fits_"):
            files = figure_outputs(
                stem,
                caption="../report/fits_experiment.rst",
                subcategory=stem[len("fits_") :],
            )
        else:
            files = figure_outputs(stem)
        outputs.update({f"{stem}__{ext}": path for ext, path in files.items()})
    return outputs


def law_figure_config(job):
    """What a drawing job needs to resolve its figures: their entries and the experiments."""
    return {
        "law_figures": {
            s: config["law_figures"][s]
            for s in law_figure_stems(job)
            if not s.startswith("fits_")
        },
        "experiments": config.get("experiments", {}),
        "law_figure_jobs": LAW_FIGURE_JOBS,
    }


# Model-subset selection (workflow/rules/selection.smk).
def selection_config():
    return config.get("selection", {})


def selection_heldout_config():
    return selection_config().get("evaluation", {})


def selection_evaluated():
    return bool(selection_heldout_config().get("enabled", False))


def selection_inputs(wildcards):
    inputs = {
        "scores": score_table(selection_config()["scores"]),
        "families": config["families"],
    }
    if selection_evaluated():
        inputs["downstream"] = selection_heldout_config()["downstream"]
    return inputs


def selection_outputs():
    """Table 1 and the heuristic comparison; with the held-out evaluation its tables and figures."""
    outputs = {
        "table": report(
            SELECTION_FILES["table"],
            caption="../report/table1.rst",
            category=TABLES_SECTION,
            subcategory="Table 1",
        ),
        "heuristic": SELECTION_FILES["heuristic"],
        "table_provenance": SELECTION_FILES["table_provenance"],
    }
    if selection_evaluated():
        for key in ("curve", "details", "predictions", "curves", "provenance"):
            outputs[key] = SELECTION_FILES[key]
        outputs.update(figures_outputs(*SELECTION_FIGURES))
    return outputs


def selection_guide_params():
    """The guide's settings, as obsscale.stages.selection.write_guide_tables takes them."""
    sel = selection_config()
    return {
        "settings": sel["guide"],
        "metrics": sel["metrics"],
        "n_components": sel["n_components"],
        "pca_components": config["capability_space"]["n_components"],
        "imputation": config["capability_space"]["imputation"],
        "max_families": sel["max_families"],
        "budgets": sel["budgets"],
        "compare_heuristic": sel.get("compare_heuristic", True),
    }


def selection_heldout_params():
    """The held-out evaluation's settings (write_heldout_evaluation's), None when it is off."""
    if not selection_evaluated():
        return None
    sel, ev = selection_config(), selection_heldout_config()
    keys = (
        "fit_metrics",
        "targets",
        "law",
        "cutoff_flops",
        "fit_components",
        "n_random",
        "random_window",
        "random_seed",
        "figure_budgets",
    )
    return {
        **{k: ev[k] for k in keys},
        "reference_family": ev.get("reference_family", "Llama-2"),
        "budgets": sel["budgets"],
        "selection_metrics": sel["metrics"],
        "selection_components": sel["n_components"],
        "max_families": sel["max_families"],
        "pca_components": config["capability_space"]["n_components"],
        "imputation": config["capability_space"]["imputation"],
    }


# Prediction (workflow/rules/predict.smk).
def predict_block(name):
    return prediction_sets(config)[name]


def predict_inputs(wildcards):
    return prediction_inputs(config, wildcards.prediction)


# The job of each capability set (workflow/rules/pca.smk): PCA, and its family laws and NMF where
# the config asks for them.
# The capability figures draw the family laws of their base set, listed in `family_laws` or not.
FAMILY_LAW_SETS = set(config.get("family_laws", {}).get("sets", [])) | (
    {config["capability_figures"]["base_set"]}
    if config.get("capability_figures")
    else set()
)
NMF_SET = config["nmf"]["set"] if config.get("nmf") else None


def capability_family_laws(model_set):
    """The family-law step of a set's job: components, metrics and output paths (None: no step)."""
    if model_set not in FAMILY_LAW_SETS:
        return None
    return {
        "components": config.get("family_laws", {}).get(
            "components", ["PC-1", "PC-2", "PC-3"]
        ),
        "metrics": capability_set(model_set)["metrics"],
        **{t: family_laws_file(model_set, t) for t in FAMILY_LAW_TABLES},
    }


def capability_nmf(model_set):
    """The NMF step of a set's job, with Fig C.19 (None: no step)."""
    if model_set != NMF_SET:
        return None
    return {
        "settings": config["nmf"],
        "k_max": config["nmf"].get("k_max", 8),
        **{t: nmf_file(model_set, t) for t in NMF_TABLES},
        "figure": {
            ext: figure_file("figC19_nmf", ext) for ext in (*FIGURE_FORMATS, "csv")
        },
    }


def capability_set_outputs(model_set):
    outputs = {table: pca_file(model_set, table) for table in PCA_TABLES}
    outputs["provenance"] = pca_file(model_set, "provenance", "json")
    family = capability_family_laws(model_set)
    if family:
        outputs.update({f"family_{t}": family[t] for t in FAMILY_LAW_TABLES})
    nmf = capability_nmf(model_set)
    if nmf:
        outputs.update({f"nmf_{t}": nmf[t] for t in NMF_TABLES})
        outputs.update(figures_outputs("figC19_nmf"))
    return outputs
