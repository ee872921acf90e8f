"""Cold and no-op run times of the default workflow (the paper reproduction from shipped scores).

Runs Snakemake in a fresh copy of config/ and resources/: once cold (nothing computed), then again
with nothing changed (the no-op run).  Prints, side by side: this layout's wall times, the previous
layout's measured times and the targets; the CPU time of every process of the run (the wall time's
floor on N cores is CPU / N), the exact CPU of each rule's jobs and of Snakemake itself (from the
probe bench/cpu_probe/sitecustomize.py, which every Python process of the run loads), and the
per-job wall and CPU of the Snakemake `benchmark:` files (benchmarks/**.tsv; their CPU is sampled
every 0.5 s, so it misses each job's last moments and is a lower bound).

On a shared machine wall times move with the other users' load (printed); CPU times much less.

    .venv/bin/python bench/workflow_runtime.py [--cores 2] [--repeat 3] [--pdf]
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROBE = ROOT / "bench" / "cpu_probe"
# The previous layout: one job per experiment's fits, one for Table C.1, one per selection figure,
# PNG + PDF of every figure by default (30 jobs; measured on 2 cores with this script before the
# change, load average 0.4: cold 65.9 s wall / 117 s CPU, no-op 2.51 s).  Ranges as first reported,
# before the NMF and leaderboard experiments were added: 60-64 s cold, 2.1-2.3 s no-op.
PREVIOUS = {"cold": (60.0, 65.9), "no-op": (2.1, 2.51)}
TARGET = {"cold": 30.0, "no-op": 2.0}


def children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def snakemake(workdir: Path, cores: int, *args: str, cpu_log: Path | None = None) -> tuple[float, float, str]:
    cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-d", str(workdir),
           "--cores", str(cores), *args]
    env = dict(os.environ)
    if cpu_log is not None:
        env["OBSSCALE_CPU_LOG"] = str(cpu_log)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PROBE), env.get("PYTHONPATH")) if p)
    cpu0, start = children_cpu(), time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    elapsed, cpu = time.perf_counter() - start, children_cpu() - cpu0
    if proc.returncode != 0:
        sys.exit(f"snakemake failed:\n{proc.stderr[-3000:]}")
    return elapsed, cpu, proc.stdout + proc.stderr


def read_benchmarks(workdir: Path) -> dict[str, tuple[float, float]]:
    """{job (benchmark path without .tsv): (wall s, CPU s)} of one run."""
    jobs = {}
    for path in sorted((workdir / "benchmarks").rglob("*.tsv")):
        with path.open() as fh:
            rows = list(csv.DictReader(fh, delimiter="\t"))
        if rows:
            cpu = rows[-1].get("cpu_time", "NA")
            jobs[str(path.relative_to(workdir / "benchmarks").with_suffix(""))] = (
                float(rows[-1]["s"]), float(cpu) if cpu not in ("NA", "") else float("nan"))
    return jobs


def one_run(cores: int, extra: list[str]) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for name in ("config", "resources"):
            shutil.copytree(ROOT / name, work / name)
        load = os.getloadavg()[0]
        cold, cold_cpu, out = snakemake(work, cores, *extra, cpu_log=work / "cpu.tsv")
        m = re.search(r"(\d+) of (\d+) steps \(100%\) done", out)
        jobs = read_benchmarks(work)
        processes = read_cpu_log(work / "cpu.tsv")
        noop, noop_cpu, out = snakemake(work, cores, *extra)
        assert "Nothing to be done" in out, "the second run was not a no-op"
    return {"cold": cold, "cold_cpu": cold_cpu, "no-op": noop, "noop_cpu": noop_cpu, "load": load,
            "steps": int(m.group(2)) if m else 0, "jobs": jobs, "processes": processes}


def read_cpu_log(path: Path) -> dict[str, list[float]]:
    """{rule: [jobs, CPU s, wall s]} from the probe's lines (rule, wildcards, CPU s, wall s)."""
    rules: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0.0])
    if path.exists():
        for line in path.read_text().splitlines():
            rule, _, cpu, wall = line.split("\t")
            r = rules[rule]
            r[0] += 1
            r[1] += float(cpu)
            r[2] += float(wall)
    return dict(rules)


def print_rules(runs: list[dict]) -> None:
    per_rule: dict[str, list[list[float]]] = defaultdict(list)
    for run in runs:
        for rule, v in run["processes"].items():
            per_rule[rule].append(v)
    rows = [(rule, v[0][0], statistics.median(x[1] for x in v), statistics.median(x[2] for x in v))
            for rule, v in per_rule.items()]
    rows.sort(key=lambda r: -r[2])
    total = statistics.median(r["cold_cpu"] for r in runs)
    print("\nper rule, exact CPU (every Python process of the cold run; median over repeats):")
    print(f"{'rule':<46}{'jobs':>5}{'CPU s':>8}{'CPU/job':>9}{'wall s':>9}{'% of run CPU':>14}")
    for rule, n, cpu, wall in rows:
        print(f"{rule:<46}{n:>5.0f}{cpu:>8.2f}{cpu / n:>9.2f}{wall:>9.2f}{100 * cpu / total:>14.1f}")
    counted = sum(r[2] for r in rows)
    print(f"{'(not Python: the shells that start each job)':<46}{'':>5}{total - counted:>8.2f}{'':>9}{'':>9}"
          f"{100 * (total - counted) / total:>14.1f}")


def print_breakdown(runs: list[dict], cores: int) -> None:
    per_job: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for run in runs:
        for job, v in run["jobs"].items():
            per_job[job].append(v)
    rows = [(job, statistics.median(w for w, _ in v), statistics.median(c for _, c in v)) for job, v in per_job.items()]
    rows.sort(key=lambda r: -r[2])
    total_cpu = statistics.median(r["cold_cpu"] for r in runs)
    print("\nper job, from the benchmark files (median over repeats; CPU sampled every 0.5 s: a lower bound):")
    print(f"{'job':<44}{'wall s':>9}{'CPU s':>8}{'% of run CPU':>14}")
    for job, wall, cpu in rows:
        print(f"{job:<44}{wall:>9.2f}{cpu:>8.2f}{100 * cpu / total_cpu:>14.1f}")
    groups: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
    for job, _, cpu in rows:
        g = groups[job.split("/")[0]]
        g[0] += 1
        g[1] += cpu
    print("\nby stage: " + ", ".join(f"{k} {n} jobs {c:.1f} s" for k, (n, c) in
                                    sorted(groups.items(), key=lambda kv: -kv[1][1])))
    jobs_cpu = sum(c for _, _, c in rows)
    print(f"CPU of the whole cold run (every process) {total_cpu:.1f} s; of the jobs (sampled) {jobs_cpu:.1f} s; "
          f"the rest ({total_cpu - jobs_cpu:.1f} s) is Snakemake itself and the jobs' unsampled tails.  "
          f"Floor of the cold wall time on {cores} cores: {total_cpu / cores:.1f} s.")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--pdf", action="store_true", help="figure_formats: [png, pdf] (the default draws PNG only)")
    args = ap.parse_args()
    extra = ["--config", "figure_formats=[png,pdf]"] if args.pdf else []
    runs = [one_run(args.cores, extra) for _ in range(args.repeat)]
    print(f"{'run':<8}{'median s':>10}{'min s':>8}{'CPU s':>8}{'previous s':>12}{'target s':>10}"
          f"{'ratio to previous':>19}{'ratio to target':>17}")
    for name, cpu_key in (("cold", "cold_cpu"), ("no-op", "noop_cpu")):
        times = [r[name] for r in runs]
        med = statistics.median(times)
        lo, hi = PREVIOUS[name]
        print(f"{name:<8}{med:>10.2f}{min(times):>8.2f}{statistics.median(r[cpu_key] for r in runs):>8.2f}"
              f"{f'{lo:g}-{hi:g}':>12}{TARGET[name]:>10.1f}{med / ((lo + hi) / 2):>19.2f}{med / TARGET[name]:>17.2f}")
    print(f"jobs in the cold run: {runs[0]['steps']}; cores: {args.cores}; repeats: {args.repeat}; "
          f"figures: {'PNG + PDF' if args.pdf else 'PNG'}; load average at start: "
          + ", ".join(f"{r['load']:.1f}" for r in runs) + " (other users' processes slow a shared machine)")
    print_rules(runs)
    print_breakdown(runs, args.cores)


if __name__ == "__main__":
    main()
