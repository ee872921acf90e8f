from obsscale.core.io import setup_logging

setup_logging(snakemake.log[0])

from obsscale.stages.nmf import write_nmf  # noqa: E402

write_nmf(
    imputed_csv=snakemake.input.imputed,
    pc_scores_csv=snakemake.input.scores,
    settings=dict(snakemake.params.settings),
    k_max=snakemake.params.k_max,
    components_csv=snakemake.output.components,
    weights_csv=snakemake.output.weights,
    family_laws_csv=snakemake.output.family_laws,
    error_curve_csv=snakemake.output.error_curve,
    provenance_json=snakemake.output.provenance,
)
