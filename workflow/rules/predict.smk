# Prediction (docs/predict.md): one job per set of `predict.sets` places the set's models in each
# frozen law's capability space and predicts the law's target with its band, from the frozen laws
# alone; its figure puts the predicted models on each main law's curve.


wildcard_constraints:
    prediction=r"[A-Za-z0-9_.-]+",


rule predict:
    input:
        unpack(predict_inputs),
    output:
        table="results/predictions/{prediction}.csv",
        png=report(
            "results/figures/predictions_{prediction}.png",
            caption="../report/predictions.rst",
            category="Predictions",
            subcategory="{prediction}",
        ),
        pdf="results/figures/predictions_{prediction}.pdf",
        csv="results/figures/predictions_{prediction}.csv",
    log:
        "logs/predictions/{prediction}.log",
    localrule: True
    conda:
        ANALYSIS_ENV
    params:
        block=lambda w: predict_block(w.prediction),
    script:
        "../scripts/predict.py"
