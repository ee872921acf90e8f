from obsscale.core.io import finish_job, setup_logging

setup_logging(snakemake.log[0])

from obsscale.stages.scores import import_scores  # noqa: E402

import_scores(
    source_csv=snakemake.input.table,
    metrics=snakemake.params.metrics,
    families_yaml=snakemake.input.families,
    output_csv=snakemake.output[0],
)
finish_job()
