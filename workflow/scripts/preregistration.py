from obsscale.core.io import setup_logging

setup_logging(snakemake.log[0])

from obsscale.stages.fits import write_preregistration  # noqa: E402

write_preregistration(
    experiments=dict(snakemake.params.experiments),
    families_yaml=snakemake.input.families,
    table_csv=snakemake.output.table,
)
