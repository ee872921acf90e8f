# Rules of the evaluation stage: lm-evaluation-harness over the model sheet (docs/evaluation.md).
# One job per (model, suite): the model is loaded once for all tasks of the suite.  Each job writes
# results/eval/runs/{model}/{suite}.json atomically (never a partial file), keeps lm-eval's response
# cache under results/eval/cache/ so a killed job resumes inside the job, and logs to
# logs/eval/{model}/{suite}.log.  The aggregation joins every job of the sheet into a tidy table and
# the wide table that a `scores:` entry of the config can name.  The final targets are listed by
# obsscale.targets.evaluation_targets.

from pathlib import Path

from obsscale.evaluation import (
    check_families,
    load_model_sheet,
    load_suites,
    model_suites,
)

EVAL = config.get("evaluation", {"enabled": False})
EVAL_SHEET_SCHEMA = str(Path(workflow.basedir) / "workflow/schemas/models.schema.yaml")
EVAL_SUITES_SCHEMA = str(Path(workflow.basedir) / "workflow/schemas/suites.schema.yaml")

if EVAL.get("enabled", False):
    # Validated when the workflow is parsed: a malformed sheet or suite file stops the run before
    # any job starts, with one message naming the file, row and field.
    EVAL_MODELS = load_model_sheet(EVAL["model_sheet"], EVAL_SHEET_SCHEMA)
    EVAL_SUITES = load_suites(EVAL["suites_file"], EVAL_SUITES_SCHEMA)
    check_families(EVAL_MODELS, config["families"], EVAL["model_sheet"])
    for _slug, _row in EVAL_MODELS.iterrows():
        for _suite in model_suites(_row, EVAL["suites"]):
            if _suite not in EVAL_SUITES:
                raise ValueError(
                    f"{EVAL['model_sheet']}: row {_row['row']}, field 'suites': unknown suite "
                    f"'{_suite}' (suites in {EVAL['suites_file']}: {', '.join(EVAL_SUITES)})"
                )
else:
    EVAL_MODELS, EVAL_SUITES = None, {}


def eval_model(wildcards):
    # Empty cells as None, not NaN: params are compared between runs, and NaN != NaN.
    row = EVAL_MODELS.loc[wildcards.model].to_dict()
    return {k: (None if isinstance(v, float) and v != v else v) for k, v in row.items()}


def eval_jobs():
    """Results files of every (model, suite) of the sheet."""
    if EVAL_MODELS is None:
        raise ValueError(
            "an evaluation table was requested but evaluation.enabled is false in the config"
        )
    return [
        f"results/eval/runs/{slug}/{suite}.json"
        for slug, row in EVAL_MODELS.iterrows()
        for suite in model_suites(row, EVAL["suites"])
    ]


def eval_columns():
    """Metric columns of the wide table: the benchmarks of the configured suites, in order."""
    columns = []
    for suite in EVAL["suites"]:
        for column in EVAL_SUITES[suite]["benchmarks"]:
            if column not in columns:
                columns.append(column)
    return columns


def eval_resource(field, default_key, scale):
    def fn(wildcards):
        value = EVAL_MODELS.loc[wildcards.model, field]
        if value is None or value != value:
            value = EVAL.get("default_resources", {}).get(
                default_key, 16 if field == "mem_gb" else 240
            )
        return int(float(value) * scale)

    return fn


rule eval_run:
    input:
        # A local checkpoint folder is an input (a changed checkpoint re-runs the job); hub ids are not.
        # A folder under results/ is made by the workflow itself (the ladder trains it first).
        model=lambda w: (
            [eval_model(w)["model"]]
            if Path(eval_model(w)["model"]).exists()
            or eval_model(w)["model"].startswith("results/")
            else []
        ),
    output:
        json="results/eval/runs/{model}/{suite}.json",
    log:
        "logs/eval/{model}/{suite}.log",
    wildcard_constraints:
        model="[A-Za-z0-9._-]+",
        suite="[A-Za-z0-9_-]+",
    conda:
        EVAL_ENV
    resources:
        gpu=lambda w: int(EVAL_MODELS.loc[w.model, "gpus"] or 0),
        mem_mb=eval_resource("mem_gb", "mem_gb", 1024),
        runtime=eval_resource("runtime_min", "runtime_min", 1),
    params:
        model=eval_model,
        suite=lambda w: EVAL_SUITES[w.suite],
        cache_dir=lambda w: f"results/eval/cache/{w.model}/{w.suite}",
        include_paths=EVAL.get("include_paths", []),
        allow_code_execution=EVAL.get("allow_code_execution", False),
        limit=EVAL.get("limit"),
        bootstrap_iters=EVAL.get("bootstrap_iters", 1000),
        seed=EVAL.get("seed", 1234),
    script:
        "../scripts/eval_run.py"


rule eval_aggregate:
    input:
        results=lambda w: eval_jobs(),
        sheet=EVAL.get("model_sheet", []),
    output:
        tidy="results/eval/{name}/scores_tidy.csv",
        wide="results/eval/{name}/scores_wide.csv",
    log:
        "logs/eval/{name}/aggregate.log",
    wildcard_constraints:
        name="[A-Za-z0-9_.-]+",
    localrule: True
    conda:
        ANALYSIS_ENV
    params:
        sheet_schema=EVAL_SHEET_SCHEMA,
        columns=lambda w: eval_columns(),
        imported=EVAL.get("imported"),
        prefer=EVAL.get("prefer", "run"),
    script:
        "../scripts/eval_aggregate.py"
