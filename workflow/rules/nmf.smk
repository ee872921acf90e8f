# Non-negative matrix factorisation of a capability set's imputed benchmark matrix (paper Fig C.19;
# settings in docs/laws.md): component weights, per-model component scores, each component's
# per-family law against log10 FLOPs and the reconstruction error for every component count.


rule nmf:
    input:
        imputed=pca_file("{set}", "imputed"),
        scores=pca_file("{set}", "scores"),
    output:
        components=nmf_file("{set}", "components"),
        weights=nmf_file("{set}", "weights"),
        family_laws=nmf_file("{set}", "family_laws"),
        error_curve=nmf_file("{set}", "error_curve"),
        provenance=nmf_file("{set}", "provenance"),
    log:
        "logs/nmf/{set}.log",
    benchmark:
        "benchmarks/nmf/{set}.tsv"
    localrule: LOCAL_ANALYSIS
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
    localrule: LOCAL_ANALYSIS
    conda:
        ANALYSIS_ENV
    script:
        "../scripts/fig_nmf.py"
