# Score tables: each named table of `scores:` is validated into results/scores/{name}.csv, which
# every later stage reads.  A bad table stops here with one error naming file, line and column.


rule import_scores:
    input:
        table=lambda w: config["scores"][w.name]["path"],
        families=config["families"],
    output:
        score_table("{name}"),
    log:
        "logs/scores/{name}.log",
    benchmark:
        "benchmarks/scores/{name}.tsv"
    localrule: LOCAL_ANALYSIS
    conda:
        ANALYSIS_ENV
    params:
        metrics=lambda w: config["scores"][w.name]["metrics"],
    script:
        "../scripts/import_scores.py"
