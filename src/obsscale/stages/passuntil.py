"""The functions the PassUntil rules call: sample, estimate, law.  Plain arguments, files in/out."""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from obsscale.core.io import atomic_path, provenance, write_csv, write_json
from obsscale.passuntil.estimators import (
    greedy_accuracy,
    instance_estimates,
    pass_at_k,
    task_pass_until,
)
from obsscale.passuntil.laws import (
    InstanceScalingLaw,
    TaskScalingLaw,
    compare_mixture,
    curvature_test,
)

log = logging.getLogger(__name__)

ESTIMATE_COLUMNS = ["model", "N", "instance", "K", "passes", "censored", "p_hat", "low", "high"]
LAW_COLUMNS = ["level", "c", "alpha", "r2", "N_target", "predicted", "predicted_low",
               "predicted_high", "actual", "curvature_class", "evidence", "n_models"]


def work_log_path(log_path: str | os.PathLike) -> Path:
    """The log a sampling job appends to.  It is not the rule's output, so the workflow engine
    never deletes it: a killed or failed job resumes from it; the output is a copy at the end."""
    p = Path(log_path)
    return p.parent / ".work" / p.name


def run_sampling(task_yaml: str, model: str, model_path: str, log_path: str,
                 backend: str = "hf", backend_options: dict | None = None,
                 check_workers: int = 1, progress: bool = True, sandbox: str | None = None) -> dict:
    """Sample one model on one task (resumable).  `sandbox` overrides the task checker's sandbox
    mode (`unsafe-local` is the explicit opt-in to run generated code without isolation); the log
    of another model identity (weights, hub commit, backend options) is set aside, never resumed."""
    from obsscale.passuntil.backends import make_backend
    from obsscale.passuntil.identity import model_identity
    from obsscale.passuntil.sampling import pass_until
    from obsscale.passuntil.tasks import load_task

    task = load_task(task_yaml)
    task.checker.prepare(sandbox)  # fails closed before the model is loaded
    identity = model_identity(model_path, backend, backend_options)
    work = work_log_path(log_path)
    be = make_backend(backend, model_path, **(backend_options or {}))
    if progress:  # progress lines in the job's log (samples done / total, rate, ETA)
        from obsscale.passuntil.progress import ProgressBackend

        be = ProgressBackend(be, log)
    summary = pass_until(task, be, model, work, check_workers=check_workers, progress=progress,
                         identity=identity)
    with atomic_path(log_path) as tmp:
        shutil.copyfile(work, tmp)
    log.info("%s on %s: %s", model, task.name, summary)
    return summary


def estimate_task(logs: list[str], models: list[str], sizes: list[float], estimates_csv: str,
                  summary_csv: str, estimator: str = "unbiased", k: int = 8, n_boot: int = 1000,
                  level: float = 0.9, seed: int = 0) -> None:
    """Per-instance estimates (estimates.csv) and the task-level summary per model (summary.csv:
    PU with bootstrap interval, greedy accuracy, pass@1 and pass@k from the first round)."""
    from obsscale.passuntil.sampling import counts_from_log

    if not (len(logs) == len(models) == len(sizes)):
        raise ValueError("logs, models and sizes differ in length")
    est_rows, summary_rows, sandboxes = [], [], {}
    for path, model, N in zip(logs, models, sizes):
        counts = counts_from_log(path)
        # Which sandbox judged the code samples (unsafe-local = no isolation), in every output.
        with open(path) as f:
            box = json.loads(f.readline()).get("sandbox") or {}
        sandboxes[model] = box.get("mode", "")
        design = counts.attrs["design"]
        est = instance_estimates(counts, r=design["r"], K_max=design["K_max"], estimator=estimator)
        est.insert(0, "N", float(N))
        est.insert(0, "model", model)
        est_rows.append(est[ESTIMATE_COLUMNS])
        tl = task_pass_until(est, n_boot=n_boot, level=level, seed=seed)
        n0 = counts["n0"].fillna(0).astype(int)
        c0 = counts["c0"].fillna(0).astype(int)
        kk = min(k, int(n0.min())) if len(n0) and n0.min() > 0 else 0
        summary_rows.append({
            "model": model, "N": float(N), **tl,
            "greedy": greedy_accuracy(counts["greedy"].dropna().astype(bool)),
            "pass_at_1": float(np.mean([pass_at_k(n, c, 1) for n, c in zip(n0, c0) if n >= 1])),
            "k": kk,
            "pass_at_k": float(np.mean([pass_at_k(n, c, kk) for n, c in zip(n0, c0)])) if kk else math.nan,
            "samples_fixed": int(n0.min()) if len(n0) else 0,
            "samples_total": int(counts["K"].sum()),
            "sandbox": sandboxes[model],
        })
    estimates = pd.concat(est_rows, ignore_index=True)
    write_csv(estimates, estimates_csv)
    write_csv(pd.DataFrame(summary_rows).sort_values("N"), summary_csv)
    write_json(provenance({f"log_{m}": p for m, p in zip(models, logs)}, estimator=estimator,
                          k=k, n_boot=n_boot, level=level, seed=seed, sandbox=sandboxes),
               Path(estimates_csv).with_suffix(".provenance.json"))


CURVE_COLUMNS = ["kind", "N", "logN", "value"]


def law_curves(summ: pd.DataFrame, task_law, instance_law, curvature: dict, n: int = 50) -> pd.DataFrame:
    """What the PassUntil figures draw of the laws of law.csv, so that they never refit: the task law
    and the mean of the instance laws (both fitted without the held-out models) on a log grid over
    every model size, and the linear and quadratic fits of the curvature test in (log N, log(−log PU))."""
    grid = np.logspace(np.log10(summ["N"].min()), np.log10(summ["N"].max()), n)
    parts = []
    for kind, law in (("task_law", task_law), ("instance_aggregate", instance_law)):
        if law is not None:
            parts.append(pd.DataFrame({"kind": kind, "N": grid, "logN": np.log(grid), "value": law.predict(grid)}))
    if "linear_coef" in curvature:
        ok = (summ["PU"] > 0) & (summ["PU"] < 1)
        x = np.log(summ.loc[ok, "N"])
        xs = np.linspace(x.min(), x.max(), n)
        xc = xs - curvature["x_mean"]
        lin, q = curvature["linear_coef"], curvature["quadratic_coefs"]
        parts.append(pd.DataFrame({"kind": "linear", "N": np.exp(xs), "logN": xs, "value": lin[0] + lin[1] * xc}))
        parts.append(pd.DataFrame({"kind": "quadratic", "N": np.exp(xs), "logN": xs,
                                   "value": q[0] + q[1] * xc + q[2] * xc**2}))
    return pd.concat(parts, ignore_index=True)[CURVE_COLUMNS] if parts else pd.DataFrame(columns=CURVE_COLUMNS)


def fit_laws(estimates_csv: str, summary_csv: str, law_csv: str, holdout: int = 1,
             interval: float = 0.9, curvature_level: float = 0.05, mixture: bool = True,
             curves_csv: str | None = None) -> pd.DataFrame:
    """law.csv: the task-level and instance-level laws fitted on all but the `holdout` largest
    models and their predictions for the largest one, the curvature class (all models), and the
    mixture-vs-single comparison.  Censored instances enter the task-level PU at s/K_max; the
    instance-level fits leave them out (see docs/passuntil.md).  `curves_csv`: the points of these
    laws and of the curvature fits that the figures draw (law_curves)."""
    est = pd.read_csv(estimates_csv)
    summ = pd.read_csv(summary_csv).sort_values("N")
    sizes = np.sort(summ["N"].unique())
    if len(sizes) <= holdout:
        raise ValueError(f"{summary_csv}: {len(sizes)} model sizes, cannot hold out {holdout}")
    target = float(sizes[-1])
    train_sizes = sizes[: len(sizes) - holdout] if holdout else sizes
    train = summ[summ["N"].isin(train_sizes)]
    actual = float(summ.loc[summ["N"] == target, "PU"].mean())
    curv = curvature_test(summ["N"], summ["PU"], level=curvature_level)
    rows = []
    law = inst = None
    row = dict.fromkeys(LAW_COLUMNS, math.nan)
    row.update(level="task", N_target=target, actual=actual, n_models=int(len(train)),
               curvature_class=curv["curvature_class"], evidence=curv["evidence"])
    try:
        law = TaskScalingLaw(interval=interval).fit(train["N"], train["PU"])
        lo, hi = law.predict_interval([target])
        row.update(c=law.c_, alpha=law.alpha_, r2=law.r2_, predicted=float(law.predict([target])[0]),
                   predicted_low=float(lo[0]), predicted_high=float(hi[0]), n_models=law.n_models_)
    except ValueError as exc:
        law = None
        row["evidence"] = f"{row['evidence']}; task law not fitted: {exc}"
    rows.append(row)
    row = dict.fromkeys(LAW_COLUMNS, math.nan)
    row.update(level="instance", N_target=target, actual=actual, curvature_class="",
               n_models=int(len(train)))
    try:
        inst = InstanceScalingLaw().fit(est[est["N"].isin(train_sizes)])
        alphas = [l.alpha_ for l in inst.laws_.values()]
        row.update(predicted=float(inst.predict([target])[0]), alpha=float(np.median(alphas)),
                   c=float(np.median([l.c_ for l in inst.laws_.values()])),
                   r2=float(np.nanmean([l.r2_ for l in inst.laws_.values()])),
                   evidence=f"{len(inst.laws_)} of {len(inst.instances_)} instances fitted; "
                            "c and alpha are medians over fitted instances")
    except ValueError as exc:
        inst = None
        row["evidence"] = f"instance laws not fitted: {exc}"
    rows.append(row)
    if mixture:
        mix = compare_mixture(summ["N"], summ["PU"])
        row = dict.fromkeys(LAW_COLUMNS, math.nan)
        row.update(level="mixture", curvature_class=f"preferred: {mix['preferred']}",
                   evidence=mix["evidence"], n_models=mix["n_models"],
                   c=mix.get("c_single", math.nan), alpha=mix.get("alpha_single", math.nan))
        rows.append(row)
    out = pd.DataFrame(rows, columns=LAW_COLUMNS)
    write_csv(out, law_csv)
    if curves_csv is not None:
        write_csv(law_curves(summ, law, inst, curv), curves_csv)
    return out
