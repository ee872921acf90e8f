# Model-subset selection (paper Sec 5): which families to evaluate under a model budget, by the
# V-optimality of their PC scores.  The guide (Table 1) searches every combination of up to
# `max_families` families exactly; the greedy/exchange heuristic runs beside it for comparison.
# Final targets: obsscale.stages.outputs.selection_targets.


rule selection_guide:
    input:
        scores=lambda w: score_table(selection_config()["scores"]),
        families=config["families"],
    output:
        table=report(
            SELECTION_FILES["table"],
            caption="../report/table1.rst",
            category=TABLES_SECTION,
            subcategory="Table 1",
        ),
        heuristic=SELECTION_FILES["heuristic"],
        provenance=SELECTION_FILES["table_provenance"],
    log:
        "logs/selection/guide.log",
    benchmark:
        "benchmarks/selection/guide.tsv"
    localrule: LOCAL_ANALYSIS
    conda:
        ANALYSIS_ENV
    params:
        settings=lambda w: selection_config()["guide"],
        metrics=lambda w: selection_config()["metrics"],
        n_components=lambda w: selection_config()["n_components"],
        pca_components=config["capability_space"]["n_components"],
        imputation=config["capability_space"]["imputation"],
        max_families=lambda w: selection_config()["max_families"],
        budgets=lambda w: selection_config()["budgets"],
        compare_heuristic=lambda w: selection_config().get("compare_heuristic", True),
    script:
        "../scripts/selection_guide.py"


# Held-out evaluation (Fig 7, C.17, C.18): select among the training models of the FLOPs cutoff,
# fit each GSM8K target on the selected models only (the laws stage's fit), score on the models
# above the cutoff.


rule selection_heldout:
    input:
        scores=lambda w: score_table(selection_config()["scores"]),
        downstream=lambda w: selection_heldout_config()["downstream"],
        families=config["families"],
    output:
        curve=SELECTION_FILES["curve"],
        details=SELECTION_FILES["details"],
        predictions=SELECTION_FILES["predictions"],
        curves=SELECTION_FILES["curves"],
        provenance=SELECTION_FILES["provenance"],
    log:
        "logs/selection/heldout.log",
    benchmark:
        "benchmarks/selection/heldout.tsv"
    localrule: LOCAL_ANALYSIS
    conda:
        ANALYSIS_ENV
    threads: 2
    params:
        budgets=lambda w: selection_config()["budgets"],
        selection_metrics=lambda w: selection_config()["metrics"],
        selection_components=lambda w: selection_config()["n_components"],
        max_families=lambda w: selection_config()["max_families"],
        pca_components=config["capability_space"]["n_components"],
        imputation=config["capability_space"]["imputation"],
        evaluation=lambda w: selection_heldout_config(),
    script:
        "../scripts/selection_heldout.py"


rule fig7a_selection_curve:
    input:
        SELECTION_FILES["curve"],
    output:
        **figure_outputs("fig7a_selection_curve"),
    log:
        "logs/figures/fig7a_selection_curve.log",
    benchmark:
        "benchmarks/figures/fig7a_selection_curve.tsv"
    localrule: LOCAL_ANALYSIS
    conda:
        ANALYSIS_ENV
    script:
        "../scripts/fig_selection_curve.py"


rule fig7b_selected_fits:
    input:
        predictions=SELECTION_FILES["predictions"],
        curves=SELECTION_FILES["curves"],
    output:
        **figure_outputs("fig7b_selected_fits"),
    log:
        "logs/figures/fig7b_selected_fits.log",
    benchmark:
        "benchmarks/figures/fig7b_selected_fits.tsv"
    localrule: LOCAL_ANALYSIS
    conda:
        ANALYSIS_ENV
    params:
        method="v-optimal",
        title="Fits on V-optimally selected models",
    script:
        "../scripts/fig_subset_fits.py"


rule figC18_random_fits:
    input:
        predictions=SELECTION_FILES["predictions"],
        curves=SELECTION_FILES["curves"],
    output:
        **figure_outputs("figC18_random_fits"),
    log:
        "logs/figures/figC18_random_fits.log",
    benchmark:
        "benchmarks/figures/figC18_random_fits.tsv"
    localrule: LOCAL_ANALYSIS
    conda:
        ANALYSIS_ENV
    params:
        method="random",
        title="Fits on randomly selected models",
    script:
        "../scripts/fig_subset_fits.py"
