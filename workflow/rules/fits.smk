# Observational scaling laws (paper §5–§7): one job per experiment of `experiments:` fits every
# (target, predictor set) law with its bands, sweeps and frozen preregistration record; one job
# scores newer models against the frozen laws and writes Table C.1; `law_figure_jobs` jobs draw the
# figures of config/figures.yaml and one overview per experiment.


rule fit_experiment:
    input:
        unpack(experiment_inputs),
    output:
        fits=report(
            fits_table("{experiment}"),
            caption="../report/fit_table.rst",
            category=TABLES_SECTION,
            subcategory="Fit tables",
        ),
        predictions=fit_file("{experiment}", "predictions"),
        curves=fit_file("{experiment}", "curves"),
        reference_lines=fit_file("{experiment}", "reference_lines"),
        sweeps=fit_file("{experiment}", "sweeps"),
        family_lines=fit_file("{experiment}", "family_lines"),
        prereg=prereg_json("{experiment}"),
    log:
        "logs/fits/{experiment}.log",
    benchmark:
        "benchmarks/fits/{experiment}.tsv"
    localrule: LOCAL_ANALYSIS
    conda:
        ANALYSIS_ENV
    params:
        block=lambda w: experiment_block(w.experiment),
        config=lambda w: {
            "scores": config["scores"],
            "laws": config.get("laws", {}),
            "capability_space": config.get("capability_space", {}),
        },
    script:
        "../scripts/fit_experiment.py"


rule preregistration:
    input:
        prereg=[prereg_json(n) for n in config.get("experiments", {})],
        scores=lambda w: sorted(
            {
                score_table(b["data"]["scores"])
                for b in config.get("experiments", {}).values()
            }
        ),
        targets=lambda w: sorted(
            {b["data"]["targets_csv"] for b in config.get("experiments", {}).values()}
        ),
        families=config["families"],
    output:
        scored=[prereg_scored(n) for n in config.get("experiments", {})],
        table=report(
            PREREG_TABLE,
            caption="../report/table_c1.rst",
            category=TABLES_SECTION,
            subcategory="Table C.1",
        ),
    log:
        "logs/prereg/preregistration.log",
    benchmark:
        "benchmarks/prereg/preregistration.tsv"
    localrule: LOCAL_ANALYSIS
    conda:
        ANALYSIS_ENV
    params:
        experiments={
            n: {
                "prereg": prereg_json(n),
                "scores": score_table(b["data"]["scores"]),
                "targets": b["data"]["targets_csv"],
                "scored": prereg_scored(n),
            }
            for n, b in config.get("experiments", {}).items()
        },
    script:
        "../scripts/preregistration.py"


if config.get("experiments"):
    for _job in range(LAW_FIGURE_JOBS):

        rule:
            name:
                f"law_figures_{_job}"
            input:
                fits=[fits_table(n) for n in config["experiments"]],
                tables=[
                    fit_file(n, table)
                    for n in config["experiments"]
                    for table in FIT_TABLES
                ],
            output:
                **law_figure_outputs(_job),
            log:
                f"logs/figures/laws_{_job}.log",
            benchmark:
                f"benchmarks/figures/laws_{_job}.tsv"
            localrule: LOCAL_ANALYSIS
            conda:
                ANALYSIS_ENV
            params:
                experiments=list(config["experiments"]),
                figures=law_figure_config(_job),
            script:
                "../scripts/law_figures.py"
