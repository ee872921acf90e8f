from obsscale.core.io import finish_job, setup_logging

setup_logging(snakemake.log[0])

from obsscale.stages.predict import write_predictions  # noqa: E402

block = dict(snakemake.params.block)
write_predictions(
    name=snakemake.wildcards.prediction,
    scores_csvs=list(snakemake.input.scores),
    prereg_jsons=list(snakemake.input.prereg),
    out_csv=snakemake.output.table,
    figure={"png": snakemake.output.png, "pdf": snakemake.output.get("pdf"), "csv": snakemake.output.csv},
    laws=block.get("laws", "all"),
    models=block.get("models", "without_target"),
    main_only=block.get("main_only", False),
    figure_laws=block.get("figure_laws", "all"),
    families_yaml=snakemake.input.get("families", [None])[0],
    evaluated_tidy=snakemake.input.get("evaluated", [None])[0],
)
finish_job()
