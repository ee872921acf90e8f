# The capability space of each model set (imputation + PCA, paper §3) and the per-family laws of
# PC (and of each raw benchmark) vs log10 FLOPs (paper Eq. 4), with the lines and bands that the
# capability figures draw.


rule capability_pca:
    input:
        scores=lambda w: score_table(capability_set(w.set)["scores"]),
        families=config["families"],
    output:
        **{table: pca_file("{set}", table) for table in PCA_TABLES},
        provenance=pca_file("{set}", "provenance", "json"),
    log:
        "logs/pca/{set}.log",
    benchmark:
        "benchmarks/pca/{set}.tsv"
    localrule: LOCAL_ANALYSIS
    conda:
        ANALYSIS_ENV
    params:
        spec=lambda w: capability_set(w.set),
        n_components=config["capability_space"]["n_components"],
        imputation=config["capability_space"]["imputation"],
    script:
        "../scripts/capability_pca.py"


rule family_laws:
    input:
        scores=pca_file("{set}", "scores"),
        score_table=lambda w: score_table(capability_set(w.set)["scores"]),
    output:
        table=family_laws_file("{set}", "table"),
        lines=family_laws_file("{set}", "lines"),
        benchmarks=family_laws_file("{set}", "benchmarks"),
        benchmark_lines=family_laws_file("{set}", "benchmark_lines"),
    log:
        "logs/family_laws/{set}.log",
    benchmark:
        "benchmarks/family_laws/{set}.tsv"
    localrule: LOCAL_ANALYSIS
    conda:
        ANALYSIS_ENV
    params:
        components=config.get("family_laws", {}).get(
            "components", ["PC-1", "PC-2", "PC-3"]
        ),
        metrics=lambda w: capability_set(w.set)["metrics"],
    script:
        "../scripts/family_laws.py"
