# Shared helpers of the rules.  Each stage's rule file registers a function that maps the config to
# that stage's final targets; `get_final_output()` (used by `rule all`) is their union, so turning an
# analysis on or off is a config change.

import yaml

FINAL_OUTPUT_FUNCTIONS = []


def final_output(fn):
    """Register `fn(config) -> list[str]` as a producer of final targets."""
    FINAL_OUTPUT_FUNCTIONS.append(fn)
    return fn


def get_final_output():
    targets = []
    for fn in FINAL_OUTPUT_FUNCTIONS:
        for target in fn(config):
            if target not in targets:
                targets.append(target)
    return targets


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
