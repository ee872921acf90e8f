from obsscale.core.io import finish_job, setup_logging

setup_logging(snakemake.log[0])

from obsscale.figures.capability import render_capability_figures  # noqa: E402
from obsscale.figures.style import group_figure_outputs  # noqa: E402

render_capability_figures(
    families_yaml=snakemake.input.families,
    base_scores=snakemake.input.base_scores,
    base_explained_variance=snakemake.input.base_explained_variance,
    base_loadings=snakemake.input.base_loadings,
    base_table=snakemake.input.base_table,
    base_metrics=list(snakemake.params.base_metrics),
    outputs=group_figure_outputs(dict(snakemake.output.items())),
    family_laws=snakemake.input.family_laws,
    family_lines=snakemake.input.family_lines,
    benchmark_laws=snakemake.input.benchmark_laws,
    benchmark_lines=snakemake.input.benchmark_lines,
    instruct_explained_variance=snakemake.input.get("instruct_explained_variance"),
    instruct_loadings=snakemake.input.get("instruct_loadings"),
    facet_min_models=snakemake.params.facet_min_models,
)
finish_job()
