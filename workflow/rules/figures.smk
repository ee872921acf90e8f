# Figures of the capability space (paper Fig 2, 3, 8, C.1, C.2, C.4).  Each figure is a PNG (in the
# report, with a caption), a PDF and the CSV of what it plots.


if config.get("capability_figures"):

    rule capability_figures:
        input:
            unpack(capability_figure_inputs),
        output:
            **figures_outputs(*capability_figure_stems(config)),
        log:
            "logs/figures/capability.log",
        benchmark:
            "benchmarks/figures/capability.tsv"
        priority: 6
        localrule: LOCAL_ANALYSIS
        conda:
            ANALYSIS_ENV
        params:
            base_metrics=lambda w: capability_set(
                config["capability_figures"]["base_set"]
            )["metrics"],
            facet_min_models=config["capability_figures"].get("facet_min_models", 3),
        script:
            "../scripts/capability_figures.py"
