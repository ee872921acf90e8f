"""The functions the PassUntil rules call: sample, estimate, law.  Plain arguments, files in/out."""

from __future__ import annotations

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
LAW_COLUMNS = ["level", "holdout", "c", "alpha", "r2", "N_target", "predicted", "predicted_low",
               "predicted_high", "actual", "curvature_class", "evidence", "n_models"]


def work_log_path(log_path: str | os.PathLike) -> Path:
    """The log a sampling job appends to.  It is not the rule's output, so the workflow engine
    never deletes it: a killed or failed job resumes from it; the output is a copy at the end."""
    p = Path(log_path)
    return p.parent / ".work" / p.name


def run_sampling(task_yaml: str, model: str, model_path: str, log_path: str,
                 backend: str = "hf", backend_options: dict | None = None,
                 check_workers: int = 1, progress: bool = True) -> dict:
    from obsscale.passuntil.backends import make_backend
    from obsscale.passuntil.sampling import pass_until
    from obsscale.passuntil.tasks import load_task

    task = load_task(task_yaml)
    work = work_log_path(log_path)
    be = make_backend(backend, model_path, **(backend_options or {}))
    summary = pass_until(task, be, model, work, check_workers=check_workers, progress=progress)
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
    est_rows, summary_rows = [], []
    for path, model, N in zip(logs, models, sizes):
        counts = counts_from_log(path)
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
        })
    estimates = pd.concat(est_rows, ignore_index=True)
    write_csv(estimates, estimates_csv)
    write_csv(pd.DataFrame(summary_rows).sort_values("N"), summary_csv)
    write_json(provenance({f"log_{m}": p for m, p in zip(models, logs)}, estimator=estimator,
                          k=k, n_boot=n_boot, level=level, seed=seed),
               Path(estimates_csv).with_suffix(".provenance.json"))


def fit_laws(estimates_csv: str, summary_csv: str, law_csv: str, holdout: int | list[int] = 1,
             interval: float = 0.9, curvature_level: float = 0.05, mixture: bool = True) -> pd.DataFrame:
    """law.csv: the task-level and instance-level laws fitted on all but the `holdout` largest
    models and their predictions for the largest one, the curvature class (all models), and the
    mixture-vs-single comparison.  A list of holdouts fits once per entry: the first entry's rows are
    levels `task` / `instance`, the others' `task_holdout{h}` / `instance_holdout{h}`."""
    est = pd.read_csv(estimates_csv)
    summ = pd.read_csv(summary_csv).sort_values("N")
    holdouts = [int(holdout)] if np.ndim(holdout) == 0 else [int(h) for h in holdout]
    rows = []
    for j, h in enumerate(holdouts):
        rows += _holdout_rows(est, summ, h, "" if j == 0 else f"_holdout{h}", interval,
                              curvature_level, summary_csv)
    if mixture:
        mix = compare_mixture(summ["N"], summ["PU"])
        row = dict.fromkeys(LAW_COLUMNS, math.nan)
        row.update(level="mixture", curvature_class=f"preferred: {mix['preferred']}",
                   evidence=mix["evidence"], n_models=mix["n_models"],
                   c=mix.get("c_single", math.nan), alpha=mix.get("alpha_single", math.nan))
        rows.append(row)
    out = pd.DataFrame(rows, columns=LAW_COLUMNS)
    write_csv(out, law_csv)
    return out


def _holdout_rows(est, summ, holdout, suffix, interval, curvature_level, summary_csv) -> list[dict]:
    sizes = np.sort(summ["N"].unique())
    if len(sizes) <= holdout:
        raise ValueError(f"{summary_csv}: {len(sizes)} model sizes, cannot hold out {holdout}")
    target = float(sizes[-1])
    train_sizes = sizes[: len(sizes) - holdout] if holdout else sizes
    train = summ[summ["N"].isin(train_sizes)]
    actual = float(summ.loc[summ["N"] == target, "PU"].mean())
    curv = curvature_test(summ["N"], summ["PU"], level=curvature_level)
    rows = []
    row = dict.fromkeys(LAW_COLUMNS, math.nan)
    row.update(level="task" + suffix, holdout=holdout, N_target=target, actual=actual,
               n_models=int(len(train)), curvature_class=curv["curvature_class"],
               evidence=curv["evidence"])
    try:
        law = TaskScalingLaw(interval=interval).fit(train["N"], train["PU"])
        lo, hi = law.predict_interval([target])
        row.update(c=law.c_, alpha=law.alpha_, r2=law.r2_, predicted=float(law.predict([target])[0]),
                   predicted_low=float(lo[0]), predicted_high=float(hi[0]), n_models=law.n_models_)
    except ValueError as exc:
        row["evidence"] = f"{row['evidence']}; task law not fitted: {exc}"
    rows.append(row)
    row = dict.fromkeys(LAW_COLUMNS, math.nan)
    row.update(level="instance" + suffix, holdout=holdout, N_target=target, actual=actual,
               curvature_class="", n_models=int(len(train)))
    try:
        inst = InstanceScalingLaw().fit(est[est["N"].isin(train_sizes)])
        alphas = [l.alpha_ for l in inst.laws_.values()]
        row.update(predicted=float(inst.predict([target])[0]), alpha=float(np.median(alphas)),
                   c=float(np.median([l.c_ for l in inst.laws_.values()])),
                   r2=float(np.nanmean([l.r2_ for l in inst.laws_.values()])),
                   evidence=f"{len(inst.laws_)} of {len(inst.instances_)} instances fitted; "
                            "c and alpha are medians over fitted instances")
    except ValueError as exc:
        row["evidence"] = f"instance laws not fitted: {exc}"
    rows.append(row)
    return rows
