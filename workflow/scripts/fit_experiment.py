from obsscale.core.io import setup_logging

setup_logging(snakemake.log[0])

from obsscale.stages.fits import write_experiment_fits  # noqa: E402

write_experiment_fits(
    name=snakemake.wildcards.experiment,
    block=dict(snakemake.params.block),
    config=dict(snakemake.params.config),
    scores_csv=snakemake.input.scores,
    families_yaml=snakemake.input.families,
    target_csv=snakemake.input.targets,
    fits_csv=snakemake.output.fits,
    predictions_csv=snakemake.output.predictions,
    curves_csv=snakemake.output.curves,
    references_csv=snakemake.output.reference_lines,
    sweeps_csv=snakemake.output.sweeps,
    prereg_json=snakemake.output.prereg,
    family_lines_csv=snakemake.output.family_lines,
)
