# obsscale: observational scaling laws and PassUntil task scaling laws.
# The default configuration reproduces the observational-scaling paper from the shipped scores.
import os
import sys

from snakemake.utils import min_version

min_version("9.0")
# The library of this checkout (also used by every rule, see workflow/rules/common.smk).
sys.path.insert(0, f"{workflow.basedir}/src")
# Jobs start with malloc() memory holding a fixed byte: scipy's Levenberg-Marquardt (MINPACK) lets
# degenerate fits depend on work memory it has not written, and this makes them reproducible
# (obsscale.laws.optimisers._fix_uninitialised_memory; glibc reads the variable when a job starts).
os.environ.setdefault("MALLOC_PERTURB_", "165")

from obsscale.core.errors import InputError
from obsscale.stages.config_numbers import coerce_numbers
from obsscale.stages.outputs import enabled_experiments
from obsscale.stages.validate import error_line, validate_config


configfile: "config/config.yaml"
# The paper figures drawn from the scaling-law tables: figure id -> builder and panels.
configfile: "config/figures.yaml"


report: "workflow/report/workflow.rst"


# `1.9e7` is a number to a person and to YAML 1.2, a string to Snakemake's YAML 1.1 reader.
coerce_numbers(config, f"{workflow.basedir}/workflow/schemas/config.schema.yaml")
# The whole config is checked before any job: schema, names, score tables, task files, model
# sheet.  A problem stops the run (and a dry run) with one line naming the file and line or the
# config key, and nothing is written.  (A job that a cluster executor starts parses this file
# again; the submitting process has checked everything by then.)
if workflow.is_main_process:
    try:
        validate_config(config, workflow.basedir)
    except InputError as exc:
        sys.exit(error_line(exc))
# `enabled: false` keeps an experiment's block in the config but fits nothing for it.
config["experiments"] = enabled_experiments(config)


include: "workflow/rules/common.smk"
include: "workflow/rules/scores.smk"
include: "workflow/rules/pca.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/fits.smk"
include: "workflow/rules/predict.smk"
include: "workflow/rules/ladder.smk"
include: "workflow/rules/passuntil.smk"
include: "workflow/rules/eval.smk"
include: "workflow/rules/selection.smk"


rule all:
    default_target: True
    input:
        get_final_output(),


include: "workflow/rules/cluster.smk"


onsuccess:
    # A job killed while writing leaves its atomic-write temporary behind; none survives a success.
    from obsscale.core.io import remove_stale_temporaries

    remove_stale_temporaries("results")
