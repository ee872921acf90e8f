"""CPU probe of bench/workflow_runtime.py: that script puts this folder on PYTHONPATH, so every
Python process of the benchmarked run loads it.  At exit each process appends one line to
$OBSSCALE_CPU_LOG: what it was (a rule's job, or Snakemake itself), its CPU seconds and its
wall seconds.  A job's CPU includes its worker processes; Snakemake's is its own only."""

import atexit
import os
import resource
import sys
import time

_LOG = os.environ.get("OBSSCALE_CPU_LOG")
_START = time.time()


def _report() -> None:
    smk = getattr(sys.modules.get("__main__"), "snakemake", None)
    own = resource.getrusage(resource.RUSAGE_SELF)
    cpu = own.ru_utime + own.ru_stime
    if smk is not None and hasattr(smk, "rule"):
        workers = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu += workers.ru_utime + workers.ru_stime
        wildcards = ",".join(f"{k}={v}" for k, v in smk.wildcards.items())
        name, job = smk.rule, wildcards
    elif "snakemake" in " ".join(sys.argv[:1]):
        name, job = "(snakemake: parse, schedule, check outputs)", ""
    else:
        name, job = "(other python)", " ".join(sys.argv[:1])
    with open(_LOG, "a") as fh:
        fh.write(f"{name}\t{job}\t{cpu:.3f}\t{time.time() - _START:.3f}\n")


if _LOG:
    atexit.register(_report)
