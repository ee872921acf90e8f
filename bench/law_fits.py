"""CPU time of the scaling-law stage, per experiment of the default config, side by side with
the share each part takes: the fits themselves, the bootstrap bands and the cutoff sweeps.

    .venv/bin/python bench/law_fits.py [experiment ...]

CPU (process) time is reported, so the numbers mean something on a shared machine; the default
run's wall time is what bench/workflow_runtime.py measures.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from obsscale.laws.experiments import run_experiment  # noqa: E402
from obsscale.laws.spec import resolve_experiment  # noqa: E402


def cpu(fn):
    start = time.process_time()
    fn()
    return time.process_time() - start


def main() -> None:
    config = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    names = sys.argv[1:] or list(config["experiments"])
    print(f"{'experiment':32s} {'full':>7s} {'no bands':>9s} {'no sweeps':>10s} {'neither':>8s}  (CPU s)")
    totals = [0.0] * 4
    for name in names:
        block = config["experiments"][name]
        times = []
        for overrides in ({}, {"n_boot": 0}, {"sweeps": {}}, {"n_boot": 0, "sweeps": {}}):
            spec = resolve_experiment(name, dict(block, **overrides), config)
            times.append(cpu(lambda: run_experiment(spec, ROOT / config["scores"][spec["data"]["scores"]]["path"],
                                                    ROOT / config["families"], ROOT / spec["data"]["targets_csv"])))
        totals = [a + b for a, b in zip(totals, times)]
        print(f"{name:32s} {times[0]:7.2f} {times[1]:9.2f} {times[2]:10.2f} {times[3]:8.2f}")
    print(f"{'total':32s} {totals[0]:7.2f} {totals[1]:9.2f} {totals[2]:10.2f} {totals[3]:8.2f}")
    print(f"bands cost {totals[0] - totals[1]:.1f} s ({(totals[0] - totals[1]) / totals[0]:.0%}), "
          f"sweeps {totals[0] - totals[2]:.1f} s ({(totals[0] - totals[2]) / totals[0]:.0%}) of the full stage")


if __name__ == "__main__":
    main()
