# Rules of the ladder (docs/ladder.md): the workflow trains its own series of small transformers on
# a synthetic corpus, then the evaluation and PassUntil stages measure them on held-out problems.
# corpus + held-out tasks -> one training job per model (resumable) -> the trained model sheet.
# Off unless the config has `ladder: {enabled: true}` (config/ladder.yaml); the final targets are
# listed by obsscale.stages.outputs.ladder_targets.

import os

from obsscale.ladder.sheet import model_training
from obsscale.ladder.tasks import held_out_files

LADDER = config.get("ladder", {"enabled": False})
LADDER_DIR = LADDER.get("output_dir", "results/ladder")
LADDER_MODELS = {m["name"]: m for m in LADDER.get("models", [])}
LADDER_RES = LADDER.get("resources", {})
LADDER_TASK_FILES = held_out_files(
    f"{LADDER_DIR}/tasks", LADDER.get("held_out", {}).get("tasks", [])
)


rule ladder_data:
    output:
        corpus=f"{LADDER_DIR}/corpus.txt",
        manifest=f"{LADDER_DIR}/tasks/manifest.json",
        # Read by the evaluation (lm_eval/) and PassUntil (passuntil/) stages.
        tasks=LADDER_TASK_FILES,
    log:
        "logs/ladder/data.log",
    conda:
        ANALYSIS_ENV
    params:
        tasks_dir=lambda w, output: os.path.dirname(output.manifest),
        ladder=LADDER,
    script:
        "../scripts/ladder_data.py"


rule ladder_train:
    input:
        corpus=f"{LADDER_DIR}/corpus.txt",
        # The held-out tasks are read by the evaluation of this model: make them exist first.
        manifest=f"{LADDER_DIR}/tasks/manifest.json",
    output:
        directory(f"{LADDER_DIR}/models/{{model}}"),
    log:
        "logs/ladder/train_{model}.log",
    wildcard_constraints:
        model="[A-Za-z0-9._-]+",
    conda:
        EVAL_ENV
    threads: LADDER_RES.get("threads", 1)
    resources:
        mem_mb=LADDER_RES.get("mem_mb", 2000),
        runtime=LADDER_RES.get("runtime", 60),
        gpu=LADDER_RES.get("gpu", 0),
    params:
        # Outside the output folder, so that Snakemake's clean-up of a killed job keeps it.
        checkpoint=lambda w: f"{LADDER_DIR}/checkpoints/{w.model}.pt",
        model=lambda w: LADDER_MODELS[w.model],
        # The recipe scaled to this model (tokens and learning rate; obsscale.ladder.sheet).
        training=lambda w: model_training(LADDER["training"], LADDER_MODELS[w.model]),
        seed=LADDER.get("seed", 0),
        device=LADDER.get("device", "auto"),
    script:
        "../scripts/ladder_train.py"


rule ladder_sheet:
    input:
        models=[f"{LADDER_DIR}/models/{m}" for m in LADDER_MODELS],
    output:
        f"{LADDER_DIR}/models.tsv",
    log:
        "logs/ladder/sheet.log",
    localrule: LOCAL_ANALYSIS
    conda:
        ANALYSIS_ENV
    params:
        ladder=LADDER,
        # The sheet the evaluation stage reads (planned from the config) must match the training.
        check_against=(
            config.get("evaluation", {}).get("model_sheet")
            if config.get("evaluation", {}).get("enabled", False)
            else None
        ),
    script:
        "../scripts/ladder_sheet.py"
