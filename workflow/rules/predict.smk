# Prediction (docs/predict.md): one job per set of `predict.sets` places the set's models in each
# frozen law's capability space and predicts the law's target with its band, from the frozen laws
# alone; its figure puts the predicted models on each main law's curve.


wildcard_constraints:
    prediction=r"[A-Za-z0-9_.-]+",


rule predict:
    input:
        unpack(predict_inputs),
    output:
        **figure_outputs(
            "predictions_{prediction}",
            caption="../report/predictions.rst",
            subcategory="{prediction}",
            category="Predictions",
        ),
        table=prediction_table("{prediction}"),
    log:
        "logs/predictions/{prediction}.log",
    localrule: LOCAL_ANALYSIS
    conda:
        ANALYSIS_ENV
    params:
        block=lambda w: predict_block(w.prediction),
    script:
        "../scripts/predict.py"
