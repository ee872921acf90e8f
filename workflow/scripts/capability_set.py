from obsscale.core.io import finish_job, setup_logging

setup_logging(snakemake.log[0])

from obsscale.stages.pca import write_capability_set  # noqa: E402

write_capability_set(
    scores_csv=snakemake.input.scores,
    families_yaml=snakemake.input.families,
    spec=dict(snakemake.params.spec),
    n_components=snakemake.params.n_components,
    imputation=dict(snakemake.params.imputation),
    pca={key: snakemake.output[key] for key in (*snakemake.params.pca_tables, "provenance")},
    family_laws=snakemake.params.family_laws,
    nmf=snakemake.params.nmf,
)
finish_job()
