from obsscale.core.io import finish_job, setup_logging

setup_logging(snakemake.log[0])

from obsscale.stages.passuntil import estimate_task  # noqa: E402

boot = snakemake.params.bootstrap
estimate_task(
    logs=list(snakemake.input.logs),
    models=list(snakemake.params.models),
    sizes=list(snakemake.params.sizes),
    estimates_csv=snakemake.output.estimates,
    summary_csv=snakemake.output.summary,
    plan_csv=snakemake.output.plan,
    estimator=snakemake.params.estimator,
    k=snakemake.params.k,
    n_boot=boot.get("n", 1000),
    level=boot.get("level", 0.9),
    seed=boot.get("seed", 0),
)
finish_job()
