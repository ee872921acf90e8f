"""`obsscale predict` for one new model against every frozen law: wall and CPU time of the whole
command, beside a bare `python -c "import pandas"` and the command's own import of the prediction
path, each the median of a few runs in fresh processes (as a user runs it):

    PYTHONPATH=src python bench/predict_cli.py [--laws results/prereg] [--runs 5]

Needs the frozen laws of a default run (`snakemake --cores 2`).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ROW = ("Model,Model Family,FLOPs (1E21),MMLU,ARC-C,HellaSwag,Winograd,TruthfulQA,GSM8K,XWinograd,HumanEval\n"
       "me/my-model-7b,MyFamily,84,0.58,0.55,0.80,0.76,0.42,0.30,0.82,\n")


def timed(argv: list[str], runs: int) -> tuple[float, float]:
    """Median wall and CPU (user + sys of the child) seconds of `argv` over `runs` fresh processes."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]))
    walls, cpus = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        proc = subprocess.run(argv, env=env, capture_output=True, text=True)
        walls.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(argv)} failed:\n{proc.stderr}")
    return statistics.median(walls), statistics.median(cpus)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--laws", default=str(ROOT / "results/prereg"))
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        scores = Path(tmp) / "my_scores.csv"
        scores.write_text(ROW)
        py = sys.executable
        rows = [
            ("python -c 'import pandas'", [py, "-c", "import pandas"]),
            ("import obsscale.laws.predict", [py, "-c", "import obsscale.laws.predict"]),
            ("obsscale predict (1 model, all laws)",
             [py, "-m", "obsscale.cli", "predict", str(scores), "--laws", args.laws, "--quiet",
              "--out", str(Path(tmp) / "out.csv")]),
        ]
        results = [(name, *timed(argv, args.runs)) for name, argv in rows]
    base_wall, base_cpu = results[0][1:]
    print(f"{'':40s} {'wall s':>8s} {'cpu s':>8s} {'cpu / import pandas':>20s}")
    for name, wall, cpu in results:
        print(f"{name:40s} {wall:8.2f} {cpu:8.2f} {cpu / base_cpu:20.2f}")


if __name__ == "__main__":
    main()
