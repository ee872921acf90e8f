# Rules of the PassUntil stage (Hu et al. 2023): sample until r passes per instance for every model
# of a series on every task, estimate pass rates, fit task scaling laws, render the five figures.
# Disabled in the default config (it needs models); see docs/passuntil.md.

PU = config.get("passuntil", {})
PU_FIGURES = [
    "passuntil_pu_vs_n",
    "passuntil_loglog",
    "passuntil_instances",
    "passuntil_resolution",
    "passuntil_sampling_cost",
]


def passuntil_runs():
    """(series, task) pairs: `runs` from the config, else every series with every task."""
    if PU.get("runs"):
        return [(r["series"], r["task"]) for r in PU["runs"]]
    return [(s, t) for s in PU.get("series", {}) for t in PU.get("tasks", {})]


def passuntil_model(series, name):
    for m in PU["series"][series]["models"]:
        if m["name"] == name:
            return m
    raise ValueError(f"passuntil: model {name!r} is not in series {series!r}")


def passuntil_models(series):
    # Ordered by N so that the held-out models are the largest.
    return sorted(PU["series"][series]["models"], key=lambda m: float(m["N"]))


def passuntil_dir(series, task):
    return f"results/passuntil/{series}/{task}"


# The final targets are listed by obsscale.targets.passuntil_targets.


rule passuntil_sample:
    input:
        task=lambda wc: PU["tasks"][wc.task],
        # A model folder under results/ is trained by the workflow (the ladder): sample after it.
        model=lambda wc: [
            p
            for p in [passuntil_model(wc.series, wc.model)["path"]]
            if str(p).startswith("results/")
        ],
    output:
        "results/passuntil/{series}/{task}/samples/{model}.jsonl",
    log:
        "logs/passuntil/{series}/{task}/sample_{model}.log",
    threads: PU.get("resources", {}).get("threads", 1)
    resources:
        mem_mb=PU.get("resources", {}).get("mem_mb", 8000),
        runtime=PU.get("resources", {}).get("runtime", 720),
        gpu=PU.get("resources", {}).get("gpu", 0),
    params:
        model_path=lambda wc: passuntil_model(wc.series, wc.model)["path"],
        backend=PU.get("backend", {}).get("name", "hf"),
        backend_options=PU.get("backend", {}).get("options", {}),
        check_workers=PU.get("check_workers", 1),
    script:
        "../scripts/passuntil_sample.py"


rule passuntil_estimate:
    input:
        logs=lambda wc: [
            f"results/passuntil/{wc.series}/{wc.task}/samples/{m['name']}.jsonl"
            for m in passuntil_models(wc.series)
        ],
    output:
        estimates="results/passuntil/{series}/{task}/estimates.csv",
        summary="results/passuntil/{series}/{task}/summary.csv",
    log:
        "logs/passuntil/{series}/{task}/estimate.log",
    params:
        models=lambda wc: [m["name"] for m in passuntil_models(wc.series)],
        sizes=lambda wc: [float(m["N"]) for m in passuntil_models(wc.series)],
        estimator=PU.get("estimator", "unbiased"),
        k=PU.get("pass_at_k", 8),
        bootstrap=PU.get("bootstrap", {}),
    script:
        "../scripts/passuntil_estimate.py"


rule passuntil_law:
    input:
        estimates="results/passuntil/{series}/{task}/estimates.csv",
        summary="results/passuntil/{series}/{task}/summary.csv",
    output:
        "results/passuntil/{series}/{task}/law.csv",
    log:
        "logs/passuntil/{series}/{task}/law.log",
    params:
        law=PU.get("law", {}),
    script:
        "../scripts/passuntil_law.py"


def passuntil_figure_inputs(wildcards=None):
    runs = passuntil_runs()
    return {
        "estimates": [f"{passuntil_dir(s, t)}/estimates.csv" for s, t in runs],
        "summary": [f"{passuntil_dir(s, t)}/summary.csv" for s, t in runs],
        "law": [f"{passuntil_dir(s, t)}/law.csv" for s, t in runs],
    }


for _fig in PU_FIGURES:

    rule:
        name:
            _fig
        input:
            **passuntil_figure_inputs(),
        output:
            **figure_outputs(_fig),
        log:
            f"logs/passuntil/{_fig}.log",
        params:
            figure=_fig,
            runs=[{"series": s, "task": t} for s, t in passuntil_runs()],
        script:
            "../scripts/passuntil_figure.py"
