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
    R1_NOTE,
    greedy_accuracy,
    instance_estimates,
    pass_at_k,
    task_pass_until,
)
from obsscale.passuntil.likelihood import LikelihoodInstanceLaw
from obsscale.passuntil.laws import (
    CurvedTaskLaw,
    InstanceScalingLaw,
    TaskScalingLaw,
    compare_mixture,
    curvature_test,
)

log = logging.getLogger(__name__)

ESTIMATE_COLUMNS = ["model", "N", "instance", "K", "passes", "censored", "drawn", "passes_drawn", "p_hat",
                    "low", "high", "r", "K_max", "note"]
LAW_COLUMNS = ["level", "holdout", "c", "alpha", "r2", "N_target", "predicted", "predicted_low",
               "predicted_high", "actual", "actual_low", "actual_high", "interval_method",
               "curvature_class", "evidence", "n_models", "r", "K_max", "note", "selected"]


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
                  level: float = 0.9, seed: int = 0, plan_csv: str | None = None) -> None:
    """Per-instance estimates (estimates.csv), the task-level summary per model (summary.csv:
    PU with its design-bootstrap interval, greedy accuracy, pass@1 and pass@k from the first
    round, samples counted and drawn) and, with `plan_csv`, the planning table of each model from
    its first round (`obsscale.passuntil.planning.plan`)."""
    from obsscale.passuntil.planning import plan
    from obsscale.passuntil.sampling import counts_from_log

    if not (len(logs) == len(models) == len(sizes)):
        raise ValueError("logs, models and sizes differ in length")
    est_rows, summary_rows, plan_rows, sandboxes = [], [], [], {}
    for path, model, N in zip(logs, models, sizes):
        counts = counts_from_log(path)
        # Which sandbox judged the code samples (unsafe-local = no isolation), in every output.
        with open(path) as f:
            box = json.loads(f.readline()).get("sandbox") or {}
        sandboxes[model] = box.get("mode", "")
        design = counts.attrs["design"]
        r, K_max = int(design["r"]), int(design["K_max"])
        est = instance_estimates(counts, r=r, K_max=K_max, estimator=estimator, batch=design["batch"])
        est["drawn"], est["passes_drawn"] = counts["drawn"].to_numpy(), counts["passes_drawn"].to_numpy()
        est.insert(0, "N", float(N))
        est.insert(0, "model", model)
        est["r"], est["K_max"], est["note"] = r, K_max, R1_NOTE if r == 1 else ""
        est_rows.append(est[ESTIMATE_COLUMNS])
        tl = task_pass_until(est, n_boot=n_boot, level=level, seed=seed, r=r, K_max=K_max, estimator=estimator,
                             batch=design["batch"])
        n0 = counts["n0"].fillna(0).astype(int)
        c0 = counts["c0"].fillna(0).astype(int)
        drawn = est["drawn"].sum()
        if plan_csv:
            table = plan(n0, c0, batch=design["batch"], seed=seed)
            table.insert(0, "N", float(N))
            table.insert(0, "model", model)
            plan_rows.append(table)
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
            "samples_drawn": int(drawn),
            "r": r, "K_max": K_max, "note": R1_NOTE if r == 1 else "",
        })
    estimates = pd.concat(est_rows, ignore_index=True)
    write_csv(estimates, estimates_csv)
    write_csv(pd.DataFrame(summary_rows).sort_values("N"), summary_csv)
    if plan_csv:
        write_csv(pd.concat(plan_rows, ignore_index=True), plan_csv)
    write_json(provenance({f"log_{m}": p for m, p in zip(models, logs)}, estimator=estimator,
                          k=k, n_boot=n_boot, level=level, seed=seed, sandbox=sandboxes),
               Path(estimates_csv).with_suffix(".provenance.json"))


CURVE_COLUMNS = ["kind", "N", "logN", "value"]


def law_curves(summ: pd.DataFrame, task_law, instance_law, curvature: dict, curved_law=None,
               n: int = 50) -> pd.DataFrame:
    """What the PassUntil figures draw of the laws of law.csv, so that they never refit: the task law,
    the mean of the instance laws and the task_curved quadratic (all fitted without the held-out
    models) on a log grid over every model size, and the linear and quadratic fits of the curvature
    test in (log N, log(−log PU))."""
    grid = np.logspace(np.log10(summ["N"].min()), np.log10(summ["N"].max()), n)
    parts = []
    for kind, law in (("task_law", task_law), ("instance_aggregate", instance_law), ("task_curved", curved_law)):
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


def fit_laws(estimates_csv: str, summary_csv: str, law_csv: str, holdout: int | list[int] = 1,
             interval: float = 0.9, curvature_level: float = 0.05, mixture: bool = True,
             curves_csv: str | None = None) -> pd.DataFrame:
    """law.csv: the task-level and instance-level laws fitted on all but the `holdout` largest
    models and their predictions for the largest one, the curvature class (all models), and the
    mixture-vs-single comparison.  A list of holdouts fits once per entry: the first entry's rows are
    levels `task` / `instance` / `instance_ols`, the others' `task_holdout{h}` and so on.

    - task: OLS of log(-log PU) on log N over the task-level PUs (the paper's task law);
    - instance: the partially pooled likelihood law on every instance's raw counts
      (`LikelihoodInstanceLaw`), its interval a prediction interval of the PU measured at the
      target under the same design;
    - task_curved: the curvature test on the fitted models only, and the quadratic in log N that it
      compares with the line, extrapolated to the target with its t prediction interval;
    - instance_ols: OLS per instance on log(-log p_hat), a documented comparison (biased low).
    `selected` marks the prediction the run stands behind: task_curved where the curvature test on
    the fitted models finds the series accelerated or sub-scaling (the law's form does not hold),
    else task.  The task row's curvature class is that of all models (the curvature figure's).
    `actual_low`/`actual_high` are the measured PU's own interval; `note` flags r = 1.
    `curves_csv`: the points of the first holdout's laws and of the curvature fits that the figures
    draw (law_curves), so that they never refit."""
    est = pd.read_csv(estimates_csv)
    summ = pd.read_csv(summary_csv).sort_values("N")
    holdouts = [int(holdout)] if np.ndim(holdout) == 0 else [int(h) for h in holdout]
    rows = []
    drawn_laws = None
    for j, h in enumerate(holdouts):
        part, laws = _holdout_rows(est, summ, h, "" if j == 0 else f"_holdout{h}", interval,
                                   curvature_level, summary_csv)
        rows += part
        drawn_laws = drawn_laws or laws
    if mixture:
        mix = compare_mixture(summ["N"], summ["PU"])
        row = dict.fromkeys(LAW_COLUMNS, math.nan)
        row.update(level="mixture", holdout=0, curvature_class=f"preferred: {mix['preferred']}",
                   evidence=mix["evidence"], n_models=mix["n_models"],
                   c=mix.get("c_single", math.nan), alpha=mix.get("alpha_single", math.nan))
        rows.append(row)
    out = pd.DataFrame(rows, columns=LAW_COLUMNS)
    write_csv(out, law_csv)
    if curves_csv is not None:
        write_csv(law_curves(summ, *drawn_laws), curves_csv)
    return out


def _holdout_rows(est, summ, holdout, suffix, interval, curvature_level, summary_csv) -> tuple[list[dict], tuple]:
    """The task, instance and instance_ols rows of one holdout, and (task law, instance law, curvature
    result) for the figures' curves (None where a law did not fit)."""
    sizes = np.sort(summ["N"].unique())
    if len(sizes) <= holdout:
        raise ValueError(f"{summary_csv}: {len(sizes)} model sizes, cannot hold out {holdout}")
    target = float(sizes[-1])
    train_sizes = sizes[: len(sizes) - holdout] if holdout else sizes
    train = summ[summ["N"].isin(train_sizes)]
    at_target = summ[summ["N"] == target].iloc[0]
    r, K_max = int(est["r"].iloc[0]), int(est["K_max"].iloc[0])
    note = R1_NOTE if (est["r"] == 1).any() else ""
    base = dict.fromkeys(LAW_COLUMNS, math.nan)
    base.update(holdout=holdout, N_target=target, actual=float(at_target["PU"]),
                actual_low=float(at_target["PU_low"]), actual_high=float(at_target["PU_high"]),
                n_models=int(len(train)), curvature_class="", r=r, K_max=K_max, note=note)
    curv = curvature_test(summ["N"], summ["PU"], level=curvature_level)
    task = dict(base, level="task" + suffix, curvature_class=curv["curvature_class"],
                evidence=curv["evidence"], interval_method="OLS on log(-log PU): t prediction interval")
    task_law = inst_law = None
    try:
        law = task_law = TaskScalingLaw(interval=interval).fit(train["N"], train["PU"])
        lo, hi = law.predict_interval([target])
        task.update(c=law.c_, alpha=law.alpha_, r2=law.r2_, predicted=float(law.predict([target])[0]),
                    predicted_low=float(lo[0]), predicted_high=float(hi[0]), n_models=law.n_models_)
    except ValueError as exc:
        task["evidence"] = f"{task['evidence']}; task law not fitted: {exc}"
    curved, curved_law = _curved_row(base, suffix, train, target, interval, curvature_level)
    # The prediction the run stands behind: the quadratic where the curvature test on the fitted
    # models rejects the line (the law's form does not hold for this series), else the law.
    curved["selected"] = curved["curvature_class"] in ("accelerated", "sub-scaling") and bool(
        np.isfinite(curved["predicted"]))
    task["selected"] = not curved["selected"]
    fit_est = est[est["N"].isin(train_sizes)]
    inst = dict(base, level="instance" + suffix,
                interval_method="likelihood: posterior draws, measured under the design (r, K_max)")
    try:
        law = inst_law = LikelihoodInstanceLaw(interval=interval).fit(fit_est)
        lo, hi = law.predict_interval(target, {"r": r, "K_max": K_max})
        inst.update(predicted=float(law.predict([target])[0]), predicted_low=lo, predicted_high=hi,
                    c=law.c_mean_, alpha=law.alpha_mean_,
                    evidence=f"{len(law.instances_)} instances, partially pooled ML on raw counts; "
                             f"alpha across instances {law.alpha_mean_:.3g} +- {law.alpha_sd_:.2g} (sd); "
                             f"c, alpha: the population mean law")
    except ValueError as exc:
        inst["evidence"] = f"likelihood instance laws not fitted: {exc}"
    ols = dict(base, level="instance_ols" + suffix, interval_method="none (comparison only)")
    try:
        law = InstanceScalingLaw().fit(fit_est)
        ols.update(predicted=float(law.predict([target])[0]),
                   alpha=float(np.median([v.alpha_ for v in law.laws_.values()])),
                   c=float(np.median([v.c_ for v in law.laws_.values()])),
                   r2=float(np.nanmean([v.r2_ for v in law.laws_.values()])),
                   evidence=f"OLS on log(-log p_hat), biased low (docs/passuntil.md); {len(law.laws_)} of "
                            f"{len(law.instances_)} instances fitted; c and alpha are medians")
    except ValueError as exc:
        ols["evidence"] = f"OLS instance laws not fitted: {exc}"
    inst["selected"] = ols["selected"] = False
    return [task, curved, inst, ols], (task_law, inst_law, curv, curved_law)


def _curved_row(base: dict, suffix: str, train: pd.DataFrame, target: float, interval: float,
                curvature_level: float) -> tuple[dict, CurvedTaskLaw | None]:
    """The task_curved row (the curvature test on the fitted models only, and the quadratic's
    prediction with its t prediction interval) and the quadratic (None where it did not fit)."""
    curv = curvature_test(train["N"], train["PU"], level=curvature_level)
    row = dict(base, level="task_curved" + suffix, curvature_class=curv["curvature_class"],
               evidence=f"curvature on the fitted models: {curv['evidence']}",
               interval_method="OLS of log(-log PU) on a quadratic in log N: t prediction interval")
    try:
        law = CurvedTaskLaw(interval=interval).fit(train["N"], train["PU"])
    except ValueError as exc:
        row["evidence"] = f"{row['evidence']}; quadratic not fitted: {exc}"
        return row, None
    lo, hi = law.predict_interval([target])
    row.update(r2=law.r2_, predicted=float(law.predict([target])[0]), predicted_low=float(lo[0]),
               predicted_high=float(hi[0]), n_models=law.n_models_)
    return row, law
