# Model-subset selection (paper Sec 5): which families to evaluate under a model budget, by the
# V-optimality of their PC scores.  The guide (Table 1) searches every combination of up to
# `max_families` families exactly; the greedy/exchange heuristic runs beside it for comparison.
# The held-out evaluation (Fig 7, C.17, C.18; `selection.evaluation`) selects among the training
# models of the FLOPs cutoff, fits each GSM8K target on the selected models only (the laws stage's
# fit), scores on the models above the cutoff and draws Fig 7a, 7b and C.18.  One job does all of
# it (its imports paid once).  Final targets: obsscale.stages.outputs.selection_targets.


if selection_config().get("enabled", False):

    rule selection:
        input:
            unpack(selection_inputs),
        output:
            **selection_outputs(),
        log:
            "logs/selection/selection.log",
        benchmark:
            "benchmarks/selection/selection.tsv"
        priority: 10
        localrule: LOCAL_ANALYSIS
        conda:
            ANALYSIS_ENV
        threads: HALF_THE_CORES
        params:
            guide=lambda w: selection_guide_params(),
            heldout=lambda w: selection_heldout_params(),
        script:
            "../scripts/selection.py"
