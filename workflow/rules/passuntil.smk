# Rules of the PassUntil stage (Hu et al. 2023): sample until r passes per instance for every model
# of a series on every task, estimate pass rates, fit task scaling laws, render the five figures.
# Disabled in the default config (it needs models); see docs/passuntil.md.  Helper functions live
# in common.smk; the final targets are listed by obsscale.stages.outputs.passuntil_targets.


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
        passuntil_samples("{series}", "{task}", "{model}"),
    log:
        "logs/passuntil/{series}/{task}/sample_{model}.log",
    conda:
        EVAL_GPU_ENV if PU.get("backend", {}).get("name") == "vllm" else EVAL_ENV
    # CPUs of the job (SLURM --cpus-per-task): `passuntil.resources.threads`, else by backend.
    threads: PU.get("resources", {}).get("threads", passuntil_default_threads())
    resources:
        mem_mb=PU.get("resources", {}).get("mem_mb", 8000),
        runtime=PU.get("resources", {}).get("runtime", 720),
        gpu=PU.get("resources", {}).get("gpu", 0),
        gpu_model=PU.get("resources", {}).get("gpu_model", ""),
    params:
        model_path=lambda wc: passuntil_model(wc.series, wc.model)["path"],
        backend=PU.get("backend", {}).get("name", "hf"),
        backend_options=PU.get("backend", {}).get("options", {}),
        check_workers=PU.get("check_workers", 1),
        sandbox=PU.get("sandbox"),
    script:
        "../scripts/passuntil_sample.py"


rule passuntil_estimate:
    input:
        logs=lambda wc: [
            passuntil_samples(wc.series, wc.task, m["name"])
            for m in passuntil_models(wc.series)
        ],
    output:
        estimates=passuntil_file("{series}", "{task}", "estimates"),
        summary=passuntil_file("{series}", "{task}", "summary"),
        # Per model, candidate designs (r, K_max) simulated from its first round (the pilot).
        plan=passuntil_file("{series}", "{task}", "plan"),
    log:
        "logs/passuntil/{series}/{task}/estimate.log",
    conda:
        ANALYSIS_ENV
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
        estimates=passuntil_file("{series}", "{task}", "estimates"),
        summary=passuntil_file("{series}", "{task}", "summary"),
    output:
        law=passuntil_file("{series}", "{task}", "law"),
        curves=passuntil_file("{series}", "{task}", "law_curves"),
    log:
        "logs/passuntil/{series}/{task}/law.log",
    conda:
        ANALYSIS_ENV
    params:
        law=PU.get("law", {}),
    script:
        "../scripts/passuntil_law.py"


for _fig in PASSUNTIL_FIGURES:

    rule:
        name:
            _fig
        input:
            **passuntil_figure_inputs(),
        output:
            **figure_outputs(_fig),
        log:
            f"logs/passuntil/{_fig}.log",
        conda:
            ANALYSIS_ENV
        params:
            figure=_fig,
            runs=[{"series": s, "task": t} for s, t in passuntil_runs(config)],
        script:
            "../scripts/passuntil_figure.py"
