from obsscale.core.io import setup_logging

setup_logging(snakemake.log[0])

from obsscale.stages.selection import write_guide_tables  # noqa: E402

write_guide_tables(
    scores_csv=snakemake.input.scores,
    families_yaml=snakemake.input.families,
    settings={k: dict(v) for k, v in snakemake.params.settings.items()},
    metrics=list(snakemake.params.metrics),
    n_components=snakemake.params.n_components,
    pca_components=snakemake.params.pca_components,
    imputation=dict(snakemake.params.imputation),
    max_families=snakemake.params.max_families,
    budgets=list(snakemake.params.budgets),
    compare_heuristic=snakemake.params.compare_heuristic,
    table_csv=snakemake.output.table,
    heuristic_csv=snakemake.output.heuristic,
    provenance_json=snakemake.output.provenance,
)
