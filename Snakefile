# obsscale: observational scaling laws and PassUntil task scaling laws.
# The default configuration reproduces the observational-scaling paper from the shipped scores.
from snakemake.utils import min_version, validate

min_version("9.0")


configfile: "config/config.yaml"


validate(config, "workflow/schemas/config.schema.yaml")


include: "workflow/rules/common.smk"
include: "workflow/rules/scores.smk"
include: "workflow/rules/pca.smk"
include: "workflow/rules/nmf.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/fits.smk"
include: "workflow/rules/ladder.smk"
include: "workflow/rules/passuntil.smk"
include: "workflow/rules/eval.smk"
include: "workflow/rules/selection.smk"


rule all:
    default_target: True
    input:
        get_final_output(),


include: "workflow/rules/cluster.smk"
