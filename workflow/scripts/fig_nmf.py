from obsscale.core.io import setup_logging

setup_logging(snakemake.log[0])

from obsscale.figures.nmf import render_nmf_figure  # noqa: E402

render_nmf_figure(
    families_yaml=snakemake.input.families,
    components_csv=snakemake.input.components,
    weights_csv=snakemake.input.weights,
    family_laws_csv=snakemake.input.family_laws,
    error_curve_csv=snakemake.input.error_curve,
    png=snakemake.output.png,
    pdf=snakemake.output.get("pdf"),
    csv=snakemake.output.csv,
)
