"""What the SLURM executor plugin would submit for the jobs of a Snakemake dry run.

`planned_jobs` reads the jobs of `snakemake -n` output (rule, wildcards, threads, resources);
`sbatch_command` feeds one of them to the plugin's own functions that build the `sbatch` call
(snakemake_executor_plugin_slurm.submit_string.get_submit_command and utils.set_gres_string), so a
test can check the CPUs, GPUs, memory and time a job would ask the scheduler for without a
cluster.  tests/test_slurm.py checks the same calls against a real SLURM.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field


class _Resources(dict):
    """Job resources as the plugin reads them: `.get(name)` and attribute access."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


@dataclass
class PlannedJob:
    rule: str
    wildcards: dict[str, str] = field(default_factory=dict)
    threads: int = 1
    resources: _Resources = field(default_factory=_Resources)
    name: str = ""


def _value(text: str):
    text = text.strip()
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    return text


def _pairs(text: str) -> dict[str, str]:
    return dict(item.split("=", 1) for item in text.split(", ") if "=" in item)


def planned_jobs(output: str) -> list[PlannedJob]:
    """Every job of a dry run's output, in order."""
    jobs: list[PlannedJob] = []
    for line in output.splitlines():
        m = re.match(r"^(local)?rule (\w+):$", line)
        if m:
            jobs.append(PlannedJob(rule=m.group(2), name=m.group(2)))
            continue
        if not jobs or not line.startswith("    "):
            continue
        key, _, rest = line.strip().partition(": ")
        if key == "wildcards":
            jobs[-1].wildcards = _pairs(rest)
        elif key == "threads":
            jobs[-1].threads = int(rest)
        elif key == "resources":
            jobs[-1].resources = _Resources({k: _value(v) for k, v in _pairs(rest).items()})
    return jobs


def sbatch_command(job: PlannedJob) -> str:
    """The `sbatch` call snakemake-executor-plugin-slurm builds for `job` (account and partition
    as the plugin passes them for the profile's empty defaults)."""
    from snakemake_executor_plugin_slurm.submit_string import get_submit_command
    from snakemake_executor_plugin_slurm.utils import set_gres_string

    params = {
        "run_uuid": "RUN",
        "slurm_logfile": "slurm.log",
        "comment_str": f"rule_{job.rule}",
        "account": "",
        "partition": "",
        "workdir": "/work",
    }
    return get_submit_command(job, params) + set_gres_string(job)
