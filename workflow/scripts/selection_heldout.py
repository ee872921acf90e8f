from obsscale.core.io import setup_logging

setup_logging(snakemake.log[0])

from obsscale.stages.selection import write_heldout_evaluation  # noqa: E402

ev = dict(snakemake.params.evaluation)
write_heldout_evaluation(
    scores_csv=snakemake.input.scores,
    downstream_csv=snakemake.input.downstream,
    families_yaml=snakemake.input.families,
    budgets=list(snakemake.params.budgets),
    selection_metrics=list(snakemake.params.selection_metrics),
    fit_metrics=list(ev["fit_metrics"]),
    targets=list(ev["targets"]),
    law=dict(ev["law"]),
    cutoff_flops=float(ev["cutoff_flops"]),
    selection_components=snakemake.params.selection_components,
    fit_components=ev["fit_components"],
    pca_components=snakemake.params.pca_components,
    imputation=dict(snakemake.params.imputation),
    max_families=snakemake.params.max_families,
    n_random=ev["n_random"],
    random_window=ev["random_window"],
    random_seed=ev["random_seed"],
    figure_budgets=list(ev["figure_budgets"]),
    reference_family=ev.get("reference_family", "Llama-2"),
    curve_csv=snakemake.output.curve,
    details_csv=snakemake.output.details,
    predictions_csv=snakemake.output.predictions,
    curves_csv=snakemake.output.curves,
    provenance_json=snakemake.output.provenance,
    n_jobs=snakemake.threads,
)
