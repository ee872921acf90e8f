from obsscale.core.io import setup_logging

setup_logging(snakemake.log[0])

from obsscale.stages.selection import figure_selection_curve  # noqa: E402

figure_selection_curve(snakemake.input[0], snakemake.output.png, snakemake.output.get("pdf"), snakemake.output.csv)
