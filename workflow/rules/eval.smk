# Rules of the evaluation stage: lm-evaluation-harness over the model sheet (docs/evaluation.md).
# One job per (model, suite): the model is loaded once for all tasks of the suite.  Each job writes
# results/eval/runs/{model}/{suite}.json atomically (never a partial file), keeps lm-eval's response
# cache under results/eval/cache/ so a killed job resumes inside the job, and logs to
# logs/eval/{model}/{suite}.log.  The aggregation joins every job of the sheet into a tidy table and
# the wide table that a `scores:` entry of the config can name.  The final targets are listed by
# obsscale.stages.outputs.evaluation_targets.

from pathlib import Path

EVAL = config.get("evaluation", {"enabled": False})

if EVAL.get("enabled", False):
    # Imported only when the stage is on: parsing the default workflow stays light.
    from obsscale.evaluation.plan import plan_evaluation

    # Validated when the workflow is parsed: a malformed sheet or suite file stops the run before
    # any job starts, with one message naming the file, row and field.
    EVAL_PLAN = plan_evaluation(
        EVAL,
        config["families"],
        Path(workflow.basedir) / "workflow/schemas/models.schema.yaml",
        Path(workflow.basedir) / "workflow/schemas/suites.schema.yaml",
    )
else:
    EVAL_PLAN = None


# Without `evaluation.enabled` the rules do not exist: nothing can ask for an evaluation.
if EVAL_PLAN is not None:

    rule eval_run:
        input:
            # A local checkpoint folder is an input (a changed checkpoint re-runs the job); hub ids are not.
            # A folder under results/ is made by the workflow itself (the ladder trains it first).
            model=lambda w: [
                m
                for m in [EVAL_PLAN.model(w.model)["model"]]
                if Path(m).exists() or m.startswith("results/")
            ],
        output:
            json=eval_run_json("{model}", "{suite}"),
        log:
            "logs/eval/{model}/{suite}.log",
        wildcard_constraints:
            model="[A-Za-z0-9._-]+",
            suite="[A-Za-z0-9_-]+",
        conda:
            # vLLM rows need the GPU dependency set (requirements-gpu.txt).
            lambda w: (
                EVAL_GPU_ENV
                if EVAL_PLAN.model(w.model)["backend"] == "vllm"
                else EVAL_ENV
            )
        # CPUs of the job (sheet column `threads`, default by backend): SLURM's --cpus-per-task.
        threads: lambda w: EVAL_PLAN.resources(w.model)["threads"]
        resources:
            gpu=lambda w: EVAL_PLAN.resources(w.model)["gpu"],
            gpu_model=lambda w: EVAL_PLAN.resources(w.model)["gpu_model"],
            mem_mb=lambda w: EVAL_PLAN.resources(w.model)["mem_mb"],
            runtime=lambda w: EVAL_PLAN.resources(w.model)["runtime"],
        params:
            model=lambda w: EVAL_PLAN.model(w.model),
            suite=lambda w: EVAL_PLAN.suites[w.suite],
            cache_dir=lambda w: eval_cache_dir(w.model, w.suite),
            include_paths=EVAL.get("include_paths", []),
            allow_code_execution=EVAL.get("allow_code_execution", False),
            sandbox=EVAL.get("sandbox", "bwrap"),
            limit=EVAL.get("limit"),
            bootstrap_iters=EVAL.get("bootstrap_iters", 1000),
            seed=EVAL.get("seed", 1234),
        script:
            "../scripts/eval_run.py"

    rule eval_aggregate:
        input:
            results=lambda w: EVAL_PLAN.jobs(),
            sheet=EVAL.get("model_sheet", []),
        output:
            tidy=eval_table("{name}", "scores_tidy"),
            wide=eval_table("{name}", "scores_wide"),
        log:
            "logs/eval/{name}/aggregate.log",
        wildcard_constraints:
            name="[A-Za-z0-9_.-]+",
        localrule: LOCAL_ANALYSIS
        conda:
            ANALYSIS_ENV
        params:
            sheet_schema=Path(workflow.basedir) / "workflow/schemas/models.schema.yaml",
            columns=lambda w: EVAL_PLAN.columns(),
            imported=EVAL.get("imported"),
            prefer=EVAL.get("prefer", "run"),
        script:
            "../scripts/eval_aggregate.py"
