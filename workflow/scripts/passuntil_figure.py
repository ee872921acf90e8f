from obsscale.core.io import finish_job, setup_logging

setup_logging(snakemake.log[0])

from obsscale.figures.passuntil import render_figure  # noqa: E402

runs = [
    {**run, "estimates": e, "summary": s, "law": law, "curves": c}
    for run, e, s, law, c in zip(
        snakemake.params.runs,
        snakemake.input.estimates,
        snakemake.input.summary,
        snakemake.input.law,
        snakemake.input.curves,
    )
]
render_figure(
    snakemake.params.figure,
    runs,
    png=snakemake.output.png,
    pdf=snakemake.output.get("pdf"),
    csv=snakemake.output.csv,
)
finish_job()
