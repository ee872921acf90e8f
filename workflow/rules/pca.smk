# The capability space of each model set (imputation + PCA, paper §3) and the per-family laws of
# PC vs log10 FLOPs (paper Eq. 4).


rule capability_pca:
    input:
        scores=lambda w: f"results/scores/{capability_set(w.set)['scores']}.csv",
        families=config["families"],
    output:
        explained_variance="results/pca/{set}/explained_variance.csv",
        loadings="results/pca/{set}/loadings.csv",
        scores="results/pca/{set}/scores.csv",
        imputed="results/pca/{set}/imputed.csv",
        provenance="results/pca/{set}/provenance.json",
    log:
        "logs/pca/{set}.log",
    benchmark:
        "benchmarks/pca/{set}.tsv"
    localrule: True
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
        scores="results/pca/{set}/scores.csv",
    output:
        "results/family_laws/{set}/pc_vs_log10_flops.csv",
    log:
        "logs/family_laws/{set}.log",
    benchmark:
        "benchmarks/family_laws/{set}.tsv"
    localrule: True
    conda:
        ANALYSIS_ENV
    params:
        components=config.get("family_laws", {}).get(
            "components", ["PC-1", "PC-2", "PC-3"]
        ),
    script:
        "../scripts/family_laws.py"
