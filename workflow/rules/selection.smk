# Model-subset selection (paper Sec 5): which families to evaluate under a model budget, by the
# V-optimality of their PC scores.  The guide (Table 1) searches every combination of up to
# `max_families` families exactly; the greedy/exchange heuristic runs beside it for comparison.


def selection_config():
    return config.get("selection", {})


rule selection_guide:
    input:
        scores=lambda w: f"results/scores/{selection_config()['scores']}.csv",
        families=config["families"],
    output:
        table="results/selection/table1.csv",
        heuristic="results/selection/greedy_vs_exact.csv",
        provenance="results/selection/table1.provenance.json",
    params:
        settings=lambda w: selection_config()["guide"],
        metrics=lambda w: selection_config()["metrics"],
        n_components=lambda w: selection_config()["n_components"],
        pca_components=config["capability_space"]["n_components"],
        imputation=config["capability_space"]["imputation"],
        max_families=lambda w: selection_config()["max_families"],
        budgets=lambda w: selection_config()["budgets"],
        compare_heuristic=lambda w: selection_config().get("compare_heuristic", True),
    log:
        "logs/selection/guide.log",
    localrule: True
    script:
        "../scripts/selection_guide.py"


@final_output
def selection_targets(config):
    cfg = config.get("selection", {})
    if not cfg.get("enabled", False):
        return []
    return ["results/selection/table1.csv", "results/selection/greedy_vs_exact.csv"]
