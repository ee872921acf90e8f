# Shared helpers of the rules.  The final targets are computed by the library
# (obsscale.targets.final_output) from the config, so turning an analysis on or off is a config
# change.

import sys

# The rules' scripts (and this workflow's own imports) use the library of this checkout, in a venv
# or in the rules' conda environments alike, which pin only the third-party dependencies.
SRC = f"{workflow.basedir}/src"
sys.path.insert(0, SRC)

from obsscale.targets import capability_figure_stems, export_library_path, final_output

export_library_path(SRC)

ANALYSIS_ENV = "../../envs/analysis.yaml"
EVAL_ENV = "../../envs/eval.yaml"


def get_final_output():
    return final_output(config)


def figure_outputs(stem):
    """The three files every figure writes: PNG (in the report), PDF and the CSV it plots."""
    return {
        "png": report(
            f"results/figures/{stem}.png",
            caption=f"../report/{stem}.rst",
            category="Figures",
        ),
        "pdf": f"results/figures/{stem}.pdf",
        "csv": f"results/figures/{stem}.csv",
    }


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
