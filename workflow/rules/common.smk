# Shared helpers of the rules.  The final targets are computed by the library
# (obsscale.stages.outputs.final_output) from the config, so turning an analysis on or off is a config
# change.

import sys

# The rules' scripts (and this workflow's own imports) use the library of this checkout, in a venv
# or in the rules' conda environments alike, which pin only the third-party dependencies.
SRC = f"{workflow.basedir}/src"
sys.path.insert(0, SRC)

from obsscale.stages.outputs import (
    overview_experiments,
    PASSUNTIL_FIGURES,
    capability_figure_stems,
    export_library_path,
    figure_formats,
    final_output,
    passuntil_runs,
)

export_library_path(SRC)

ANALYSIS_ENV = "../../envs/analysis.yaml"
EVAL_ENV = "../../envs/eval.yaml"
FIGURE_FORMATS = figure_formats(config)


def get_final_output():
    return final_output(config)


def figure_outputs(stem):
    """The files every figure writes: PNG (in the report), PDF unless `figure_formats` leaves it
    out, and the CSV it plots."""
    outputs = {
        "png": report(
            f"results/figures/{stem}.png",
            caption=f"../report/{stem}.rst",
            category="Figures",
        ),
        "csv": f"results/figures/{stem}.csv",
    }
    if "pdf" in FIGURE_FORMATS:
        outputs["pdf"] = f"results/figures/{stem}.pdf"
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
        "base_scores": f"results/pca/{base}/scores.csv",
        "base_explained_variance": f"results/pca/{base}/explained_variance.csv",
        "base_loadings": f"results/pca/{base}/loadings.csv",
        "base_table": f"results/scores/{capability_set(base)['scores']}.csv",
    }
    if figs.get("instruct_set"):
        inputs["instruct_explained_variance"] = (
            f"results/pca/{figs['instruct_set']}/explained_variance.csv"
        )
        inputs["instruct_loadings"] = f"results/pca/{figs['instruct_set']}/loadings.csv"
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


def passuntil_dir(series, task):
    return f"results/passuntil/{series}/{task}"


def passuntil_figure_inputs(wildcards=None):
    runs = passuntil_runs(config)
    return {
        "estimates": [f"{passuntil_dir(s, t)}/estimates.csv" for s, t in runs],
        "summary": [f"{passuntil_dir(s, t)}/summary.csv" for s, t in runs],
        "law": [f"{passuntil_dir(s, t)}/law.csv" for s, t in runs],
    }


# Scaling-law stage (rules/fits.smk).


def experiment_block(name):
    return config["experiments"][name]


def experiment_inputs(wildcards):
    block = experiment_block(wildcards.experiment)
    return {
        "scores": f"results/scores/{block['data']['scores']}.csv",
        "targets": block["data"]["targets_csv"],
        "families": config["families"],
    }


FIT_TABLES = ("predictions", "curves", "reference_lines", "sweeps")


def law_figure_stems():
    return [
        *config.get("law_figures", []),
        *(f"fits_{exp}" for exp in overview_experiments(config)),
    ]


# Drawing is CPU-bound (text layout dominates), so the figures are split over a few jobs that run
# in parallel; each job still starts Python only once for many figures.
LAW_FIGURE_JOBS = 2


def law_figure_outputs(job):
    outputs = {}
    for stem in law_figure_stems()[job::LAW_FIGURE_JOBS]:
        if stem.startswith("fits_"):
            outputs[f"{stem}__png"] = report(
                f"results/figures/{stem}.png",
                caption="../report/fits_experiment.rst",
                category="Scaling laws",
                subcategory=stem[len("fits_") :],
            )
            if "pdf" in FIGURE_FORMATS:
                outputs[f"{stem}__pdf"] = f"results/figures/{stem}.pdf"
            outputs[f"{stem}__csv"] = f"results/figures/{stem}.csv"
        else:
            outputs.update(figures_outputs(stem))
    return outputs


# Model-subset selection (workflow/rules/selection.smk).
def selection_config():
    return config.get("selection", {})


def selection_eval_config():
    return selection_config().get("evaluation", {})


# NMF of the benchmark matrix (workflow/rules/nmf.smk).
def nmf_tables():
    nmf_set = config.get("nmf", {}).get("set", "base8")
    return {
        t: f"results/nmf/{nmf_set}/{t}.csv"
        for t in ("components", "weights", "family_laws", "error_curve")
    }
