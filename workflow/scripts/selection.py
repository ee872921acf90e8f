from obsscale.core.io import finish_job, setup_logging

setup_logging(snakemake.log[0])

from obsscale.stages.selection import write_selection  # noqa: E402

heldout = snakemake.params.heldout
write_selection(
    scores_csv=snakemake.input.scores,
    families_yaml=snakemake.input.families,
    guide=dict(snakemake.params.guide),
    outputs=dict(snakemake.output.items()),
    heldout=dict(heldout) if heldout else None,
    downstream_csv=snakemake.input.get("downstream"),
    n_jobs=snakemake.threads,
)
finish_job()
