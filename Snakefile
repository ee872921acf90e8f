# obsscale: observational scaling laws and PassUntil task scaling laws.
# The default configuration reproduces the observational-scaling paper from the shipped scores.
import sys

from snakemake.utils import min_version, validate

min_version("9.0")

# The library of this checkout (also used by every rule, see workflow/rules/common.smk).
sys.path.insert(0, f"{workflow.basedir}/src")
from obsscale.stages.config_numbers import coerce_numbers


configfile: "config/config.yaml"
# The paper figures drawn from the scaling-law tables: figure id -> builder and panels.
configfile: "config/figures.yaml"


report: "workflow/report/workflow.rst"


# `1.9e7` is a number to a person and to YAML 1.2, a string to Snakemake's YAML 1.1 reader.
coerce_numbers(config, f"{workflow.basedir}/workflow/schemas/config.schema.yaml")
validate(config, "workflow/schemas/config.schema.yaml")


include: "workflow/rules/common.smk"
include: "workflow/rules/scores.smk"
include: "workflow/rules/pca.smk"
include: "workflow/rules/nmf.smk"
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
