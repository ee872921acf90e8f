from obsscale.core.io import setup_logging

setup_logging(snakemake.log[0])

from obsscale.stages.pca import write_capability_space  # noqa: E402

write_capability_space(
    scores_csv=snakemake.input.scores,
    families_yaml=snakemake.input.families,
    spec=dict(snakemake.params.spec),
    n_components=snakemake.params.n_components,
    imputation=dict(snakemake.params.imputation),
    explained_variance=snakemake.output.explained_variance,
    loadings=snakemake.output.loadings,
    scores=snakemake.output.scores,
    imputed=snakemake.output.imputed,
    provenance_json=snakemake.output.provenance,
)
