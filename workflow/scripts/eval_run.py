"""Evaluate one model on one suite with lm-eval (rule eval_run)."""

import logging

from obsscale.core.io import setup_logging

setup_logging(snakemake.log[0])

from obsscale.core.gpus import claim_gpus  # noqa: E402

# Devices of this job's own on a workstation, before anything touches CUDA (under SLURM: kept).
claim_gpus(snakemake.resources.gpu)

from obsscale.evaluation.harness import run_suite  # noqa: E402

try:
    run_suite(
        model=snakemake.params.model,
        suite=snakemake.params.suite,
        output=snakemake.output.json,
        cache_dir=snakemake.params.cache_dir,
        include_paths=snakemake.params.include_paths,
        allow_code_execution=snakemake.params.allow_code_execution,
        limit=snakemake.params.limit,
        bootstrap_iters=snakemake.params.bootstrap_iters,
        seed=snakemake.params.seed,
        suite_name=snakemake.wildcards.suite,
        sandbox=snakemake.params.sandbox,
        threads=snakemake.threads,
    )
except Exception:
    # The job's log is where a user looks first (docs/evaluation.md): put the reason there too.
    logging.getLogger("obsscale.evaluation.harness").exception(
        "evaluation of %s on suite %s failed", snakemake.wildcards.model, snakemake.wildcards.suite
    )
    raise
