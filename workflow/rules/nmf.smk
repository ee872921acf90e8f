# Non-negative matrix factorisation of a capability set's imputed benchmark matrix (paper Fig C.19;
# settings in docs/laws.md): component weights, per-model component scores, each component's
# per-family law against log10 FLOPs and the reconstruction error for every component count.


rule nmf:
    input:
        imputed="results/pca/{set}/imputed.csv",
        scores="results/pca/{set}/scores.csv",
    output:
        components="results/nmf/{set}/components.csv",
        weights="results/nmf/{set}/weights.csv",
        family_laws="results/nmf/{set}/family_laws.csv",
        error_curve="results/nmf/{set}/error_curve.csv",
        provenance="results/nmf/{set}/provenance.json",
    log:
        "logs/nmf/{set}.log",
    benchmark:
        "benchmarks/nmf/{set}.tsv"
    localrule: True
    conda:
        ANALYSIS_ENV
    params:
        settings=lambda w: config.get("nmf", {}),
        k_max=lambda w: config.get("nmf", {}).get("k_max", 8),
    script:
        "../scripts/nmf.py"


rule figC19_nmf:
    input:
        **nmf_tables(),
        families=config["families"],
    output:
        **figure_outputs("figC19_nmf"),
    log:
        "logs/figures/figC19_nmf.log",
    benchmark:
        "benchmarks/figures/figC19_nmf.tsv"
    localrule: True
    conda:
        ANALYSIS_ENV
    script:
        "../scripts/fig_nmf.py"
