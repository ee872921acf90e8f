from obsscale.core.io import setup_logging

setup_logging(snakemake.log[0])

from obsscale.stages.ladder import train_ladder_model

train_ladder_model(
    snakemake.input.corpus,
    snakemake.output[0],
    snakemake.params.checkpoint,
    snakemake.params.model,
    snakemake.params.training,
    snakemake.params.seed,
    threads=snakemake.threads,
    device=snakemake.params.device,
)
