from obsscale.core.io import finish_job, setup_logging

setup_logging(snakemake.log[0])

from obsscale.stages.ladder import write_ladder_sheet

write_ladder_sheet(
    list(snakemake.input.models),
    snakemake.output[0],
    snakemake.params.ladder,
    check_against=snakemake.params.check_against,
)
finish_job()
