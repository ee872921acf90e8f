"""Join a model sheet's lm-eval results (and imported scores) into tidy and wide tables."""

from obsscale.core.io import finish_job, setup_logging

setup_logging(snakemake.log[0])

from obsscale.evaluation.tables import aggregate_evaluation  # noqa: E402

aggregate_evaluation(
    results=list(snakemake.input.results),
    sheet_path=snakemake.input.sheet,
    sheet_schema=snakemake.params.sheet_schema,
    columns=list(snakemake.params.columns),
    tidy_output=snakemake.output.tidy,
    wide_output=snakemake.output.wide,
    imported=snakemake.params.imported,
    prefer=snakemake.params.prefer,
)
finish_job()
