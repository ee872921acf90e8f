"""Cold and no-op run times of the default workflow (the paper reproduction from shipped scores).

Runs Snakemake in a fresh copy of config/ and resources/: once cold (nothing computed), then again
with nothing changed (the no-op run).  Prints both side by side with the targets (cold under 60 s,
no-op under 3 s on 2 cores) and the number of jobs.

    .venv/bin/python bench/workflow_runtime.py [--cores 2] [--repeat 3]
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def snakemake(workdir: Path, cores: int, *args: str) -> tuple[float, str]:
    cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-d", str(workdir),
           "--cores", str(cores), *args]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"snakemake failed:\n{proc.stderr[-3000:]}")
    return elapsed, proc.stdout + proc.stderr


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    cold, noop, jobs = [], [], 0
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            for name in ("config", "resources"):
                shutil.copytree(ROOT / name, work / name)
            t, out = snakemake(work, args.cores)
            cold.append(t)
            m = re.search(r"(\d+) of (\d+) steps \(100%\) done", out)
            jobs = int(m.group(2)) if m else jobs
            t, out = snakemake(work, args.cores)
            assert "Nothing to be done" in out, "the second run was not a no-op"
            noop.append(t)
    print(f"{'run':<8}{'median s':>10}{'min s':>8}{'target s':>10}{'ratio to target':>17}")
    for name, times, target in (("cold", cold, 60.0), ("no-op", noop, 3.0)):
        med = statistics.median(times)
        print(f"{name:<8}{med:>10.2f}{min(times):>8.2f}{target:>10.1f}{med / target:>17.2f}")
    print(f"jobs in the cold run: {jobs}; cores: {args.cores}; repeats: {args.repeat}")


if __name__ == "__main__":
    main()
