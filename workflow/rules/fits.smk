# Observational scaling laws (paper §5–§7): one job per experiment of `experiments:` fits every
# (target, predictor set) law with its bands, sweeps and frozen preregistration record; one job
# scores newer models against the frozen laws and writes Table C.1; two jobs draw every figure.


rule fit_experiment:
    input:
        unpack(experiment_inputs),
    output:
        fits="results/fits/{experiment}.csv",
        predictions="results/fits/{experiment}/predictions.csv",
        curves="results/fits/{experiment}/curves.csv",
        reference_lines="results/fits/{experiment}/reference_lines.csv",
        sweeps="results/fits/{experiment}/sweeps.csv",
        prereg="results/prereg/{experiment}.json",
    log:
        "logs/fits/{experiment}.log",
    benchmark:
        "benchmarks/fits/{experiment}.tsv"
    localrule: True
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
        prereg=expand(
            "results/prereg/{experiment}.json",
            experiment=list(config.get("experiments", {})),
        ),
        scores=lambda w: sorted(
            {
                f"results/scores/{b['data']['scores']}.csv"
                for b in config.get("experiments", {}).values()
            }
        ),
        targets=lambda w: sorted(
            {b["data"]["targets_csv"] for b in config.get("experiments", {}).values()}
        ),
        families=config["families"],
    output:
        scored=expand(
            "results/prereg/{experiment}_scored.csv",
            experiment=list(config.get("experiments", {})),
        ),
        table="results/prereg/table_c1.csv",
    log:
        "logs/prereg/preregistration.log",
    benchmark:
        "benchmarks/prereg/preregistration.tsv"
    localrule: True
    conda:
        ANALYSIS_ENV
    params:
        experiments={
            n: {
                "prereg": f"results/prereg/{n}.json",
                "scores": f"results/scores/{b['data']['scores']}.csv",
                "targets": b["data"]["targets_csv"],
                "scored": f"results/prereg/{n}_scored.csv",
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
                fits=expand(
                    "results/fits/{experiment}.csv",
                    experiment=list(config["experiments"]),
                ),
                tables=expand(
                    "results/fits/{experiment}/{table}.csv",
                    experiment=list(config["experiments"]),
                    table=FIT_TABLES,
                ),
            output:
                **law_figure_outputs(_job),
            log:
                f"logs/figures/laws_{_job}.log",
            benchmark:
                f"benchmarks/figures/laws_{_job}.tsv"
            localrule: True
            conda:
                ANALYSIS_ENV
            params:
                experiments=list(config["experiments"]),
            script:
                "../scripts/law_figures.py"
