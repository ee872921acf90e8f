from obsscale.core.io import finish_job, setup_logging

setup_logging(snakemake.log[0])

from obsscale.stages.fits import write_all_fits  # noqa: E402

write_all_fits(
    experiments={name: dict(e) for name, e in snakemake.params.experiments.items()},
    config=dict(snakemake.params.config),
    families_yaml=snakemake.input.families,
    table_csv=snakemake.output.table,
    workers=snakemake.threads,
)
finish_job()
