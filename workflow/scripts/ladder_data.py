from obsscale.core.io import finish_job, setup_logging

setup_logging(snakemake.log[0])

from obsscale.stages.ladder import make_ladder_data

make_ladder_data(
    snakemake.output.corpus,
    snakemake.params.tasks_dir,
    snakemake.output.manifest,
    snakemake.params.ladder,
)
finish_job()
