from obsscale.core.io import setup_logging

setup_logging(snakemake.log[0])

from obsscale.stages.selection import figure_subset_fits  # noqa: E402

figure_subset_fits(snakemake.input.predictions, snakemake.input.curves, snakemake.params.method, snakemake.output.png,
                   snakemake.output.get("pdf"), snakemake.output.csv, snakemake.params.title)
