from obsscale.core.io import setup_logging

setup_logging(snakemake.log[0])

from obsscale.stages.pca import write_family_laws  # noqa: E402

write_family_laws(
    pc_scores_csv=snakemake.input.scores,
    components=list(snakemake.params.components),
    output_csv=snakemake.output.table,
    lines_csv=snakemake.output.lines,
    score_table_csv=snakemake.input.score_table,
    metrics=list(snakemake.params.metrics),
    benchmarks_csv=snakemake.output.benchmarks,
    benchmark_lines_csv=snakemake.output.benchmark_lines,
)
