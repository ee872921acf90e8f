"""Cost of judging one code sample, printed side by side in one run.

Per sample wall time of the three ways a program can be run: a bare `python -c` subprocess (no
isolation, no verdict channel: the floor), the `unsafe-local` sandbox (rlimits, audit hook, as root
also a network namespace and `nobody`), and the default `bwrap` sandbox; for a trivial script and for
a HumanEval problem judged with its tests (check mode: the candidate in its own process).  Sampling
cost on a real model is dominated by generation; this says what the sandbox adds per sample.

Run: PYTHONPATH=src python bench/sandbox.py [--n 40]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

from obsscale.passuntil.sandbox import SandboxLimits, isolation, run_python, run_test


def timed(fn, n: int) -> float:
    fn()  # warm (the isolation probe, page cache)
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=40)
    args = parser.parse_args()
    from obsscale.evaluation.code_tasks import humaneval_rows

    problem = humaneval_rows()[0]
    limits = SandboxLimits()
    python = isolation("bwrap")["python"]
    program = problem["prompt"] + problem["canonical_solution"] + "\n" + problem["test"] + \
        f"\ncheck({problem['entry_point']})\n"
    rows = [("bare subprocess", "script", timed(lambda: subprocess.run(
        [python, "-c", "pass"], check=True), args.n))]
    rows.append(("bare subprocess", "HumanEval/0", timed(lambda: subprocess.run(
        [python, "-c", program], check=True), args.n)))
    for mode in ("unsafe-local", "bwrap"):
        rows.append((mode, "script", timed(lambda: run_python("pass", limits, sandbox=mode), args.n)))
        rows.append((mode, "HumanEval/0", timed(lambda: run_test(
            problem["prompt"], problem["canonical_solution"], problem["test"],
            problem["entry_point"], limits, sandbox=mode), args.n)))
    base = {job: t for name, job, t in rows if name == "bare subprocess"}
    print(f"median wall time per sample over {args.n} runs ({python}, {sys.platform})")
    print(f"{'runner':<18}{'job':<14}{'ms/sample':>10}{'x bare':>9}")
    for name, job, t in rows:
        print(f"{name:<18}{job:<14}{1000 * t:>10.1f}{t / base[job]:>9.2f}")
    print("bwrap layers:", ", ".join(isolation("bwrap")["layers"]))


if __name__ == "__main__":
    main()
