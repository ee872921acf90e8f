from obsscale.core.io import setup_logging

setup_logging(snakemake.log[0])

from obsscale.core.gpus import claim_gpus  # noqa: E402

# Devices of this job's own on a workstation, before anything touches CUDA (under SLURM: kept).
claim_gpus(snakemake.resources.gpu)

from obsscale.stages.passuntil import run_sampling  # noqa: E402

options = dict(snakemake.params.backend_options)
if snakemake.params.backend == "hf":
    options.setdefault("threads", snakemake.threads)
run_sampling(
    task_yaml=snakemake.input.task,
    model=snakemake.wildcards.model,
    model_path=snakemake.params.model_path,
    log_path=snakemake.output[0],
    backend=snakemake.params.backend,
    backend_options=options,
    check_workers=snakemake.params.check_workers,
    sandbox=snakemake.params.sandbox,
)
