# The capability space of each model set (imputation + PCA, paper §3) and the per-family laws of
# PC (and of each raw benchmark) vs log10 FLOPs (paper Eq. 4), with the lines and bands that the
# capability figures draw; for the set of `nmf:`, the non-negative matrix factorisation of its
# imputed benchmark matrix and Fig C.19 (docs/laws.md).  One job per set (rule `capability_<set>`)
# does all of it: one set's steps always run together, and its imports are paid once.


for _set in config["capability_space"]["sets"]:

    rule:
        name:
            f"capability_{_set}"
        input:
            scores=score_table(capability_set(_set)["scores"]),
            families=config["families"],
        output:
            **capability_set_outputs(_set),
        log:
            f"logs/capability/{_set}.log",
        benchmark:
            f"benchmarks/capability/{_set}.tsv"
        priority: 9
        localrule: LOCAL_ANALYSIS
        conda:
            ANALYSIS_ENV
        params:
            spec=capability_set(_set),
            n_components=config["capability_space"]["n_components"],
            imputation=config["capability_space"]["imputation"],
            family_laws=capability_family_laws(_set),
            nmf=capability_nmf(_set),
            pca_tables=PCA_TABLES,
        script:
            "../scripts/capability_set.py"
