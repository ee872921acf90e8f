# Observational scaling laws (paper §5–§7): one job fits every experiment of `experiments:` (each
# (target, predictor set) law with its bands, sweeps and frozen preregistration record, experiments
# in parallel on the job's threads), then scores newer models against the frozen laws and writes
# Table C.1; `law_figure_jobs` jobs draw the figures of config/figures.yaml and one overview per
# experiment.  One job rather than one per experiment: every law figure and Table C.1 read all
# experiments, so a change to one reruns them anyway, and one job pays the imports once
# (docs/laws.md, "Run time").


if config.get("experiments"):

    rule fit_experiments:
        input:
            unpack(all_experiment_inputs),
        output:
            **experiment_outputs(),
            table=report(
                PREREG_TABLE,
                caption="../report/table_c1.rst",
                category=TABLES_SECTION,
                subcategory="Table C.1",
            ),
        log:
            "logs/fits/experiments.log",
        benchmark:
            "benchmarks/fits/experiments.tsv"
        # Priorities order the default run's jobs longest chain first (scores, fits, law figures;
        # the selection; the capability sets and their figures) so that the short jobs fill the
        # cores at the end (bench/workflow_runtime.py).
        priority: 20
        localrule: LOCAL_ANALYSIS
        conda:
            ANALYSIS_ENV
        threads: min(len(config["experiments"]), HALF_THE_CORES)
        params:
            experiments=lambda w: experiment_params(),
            config=lambda w: {
                "scores": config["scores"],
                "laws": config.get("laws", {}),
                "capability_space": config.get("capability_space", {}),
            },
        script:
            "../scripts/fit_experiments.py"

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
            priority: 8
            localrule: LOCAL_ANALYSIS
            conda:
                ANALYSIS_ENV
            params:
                experiments=list(config["experiments"]),
                figures=law_figure_config(_job),
            script:
                "../scripts/law_figures.py"
