from obsscale.core.io import finish_job, setup_logging

setup_logging(snakemake.log[0])

from obsscale.stages.passuntil import fit_laws  # noqa: E402

law = snakemake.params.law
fit_laws(
    estimates_csv=snakemake.input.estimates,
    summary_csv=snakemake.input.summary,
    law_csv=snakemake.output.law,
    curves_csv=snakemake.output.curves,
    holdout=law.get("holdout", 1),
    interval=law.get("interval", 0.9),
    curvature_level=law.get("curvature_level", 0.05),
    mixture=law.get("mixture", True),
)
finish_job()
