"""Checks of how a run is spread over machines: which rules run on the submitting node of a
cluster, and whether a job's GPU request can be met.  Plain functions of plain values; the
workflow (workflow/rules/cluster.smk) feeds them what Snakemake knows about the run."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from obsscale.core.errors import InputError

__all__ = [
    "DEFAULT_THREADS",
    "GpuResourceError",
    "RuleInfo",
    "check_gpu_request",
    "check_local_rules",
    "checked_gpu_resource",
    "default_threads",
]

# CPUs of an evaluation or sampling job when the model sheet / config leaves them empty, by
# backend: transformers runs the model (on the CPU) or feeds it (on a GPU) with a few threads;
# vLLM also tokenizes, schedules and detokenizes on the CPU beside each GPU worker.
DEFAULT_THREADS = {"hf": 4, "vllm": 8, "simulated": 1}


def default_threads(backend: str | None) -> int:
    """The CPUs (Snakemake `threads`) of a job of `backend` that sets none itself."""
    return DEFAULT_THREADS.get(backend or "hf", 1)


class GpuResourceError(InputError):
    """A job needs GPUs that the run's resource settings cannot give it."""


@dataclass(frozen=True)
class RuleInfo:
    """What decides where a rule may run: its name, whether it runs on the submitting node of a
    cluster (`localrule: True`), and whether it declares a `gpu` resource at all (the amount
    may depend on wildcards)."""

    name: str
    local: bool
    declares_gpu: bool


def check_local_rules(rules: Iterable[RuleInfo]) -> list[str]:
    """Names of the rules that run on the submitting node, sorted; raise `GpuResourceError` if
    one of them declares a `gpu` resource (GPU work does not belong on a cluster's login node,
    and a local rule gets no GPUs from the scheduler)."""
    rules = list(rules)
    bad = sorted(r.name for r in rules if r.local and r.declares_gpu)
    if bad:
        raise GpuResourceError(
            f"rule(s) {', '.join(repr(b) for b in bad)} declare a 'gpu' resource but are marked "
            "`localrule: True`, so on a cluster they would run on the submitting node without "
            "GPUs; remove `localrule: True` from GPU rules (docs/cluster.md)"
        )
    return sorted(r.name for r in rules if r.local)


def check_gpu_request(
    requested: object,
    available: int | None,
    *,
    runs_locally: bool,
    rule: str | None = None,
) -> int:
    """Return the number of GPUs a job asks for, or raise `GpuResourceError` saying how to fix
    the run's settings.

    `requested` is the job's `gpu` resource; `available` the run's global `gpu` resource
    (`--resources gpu=N`, set by profiles/local), None when the run declares none;
    `runs_locally` whether the job runs on this machine rather than through a cluster
    scheduler (which is asked for the GPUs with the job instead, so `available` does not apply).
    """
    what = f"rule '{rule}'" if rule else "a job"
    if isinstance(requested, bool) or not isinstance(requested, int) or requested < 0:
        raise GpuResourceError(
            f"{what} asks for gpu={requested!r}; the gpu resource must be a whole number of "
            "GPUs (0 for none)"
        )
    if requested == 0 or not runs_locally:
        return requested
    if available is None or requested > available:
        raise GpuResourceError(gpu_shortage_message(what, requested, available))
    return requested


def gpu_shortage_message(what: str, requested: int, available: int | None) -> str:
    """Why a job's GPUs cannot be had on this machine, and the exact flags that fix it."""
    if available is None:
        have = "this run declares no 'gpu' resource, so Snakemake would start every GPU job at once"
    else:
        amount = "no GPUs" if available == 0 else f"only {available} GPU(s)"
        have = f"this run declares {amount} (gpu={available})"
    return (
        f"{what} needs {requested} GPU(s) per job, but {have}. On a workstation with N GPUs "
        f"add `--resources gpu=N` (N >= {requested}) to the command, or set `gpu: N` under "
        "`resources:` in profiles/local/config.yaml and run with `--profile profiles/local`; "
        "on a SLURM cluster run with `--profile profiles/slurm`, which asks the scheduler for "
        "the GPUs instead; without GPUs, give the job's model gpus=0 (docs/cluster.md)"
    )


def checked_gpu_resource(
    rule: str,
    requested: Callable[..., object],
    run_settings: Callable[[], tuple[int | None, bool, bool] | None],
    warn: Callable[[str], None] | None = None,
) -> Callable[..., object]:
    """A resource function for Snakemake's `gpu` resource of `rule` that checks each job's
    request with `check_gpu_request` before the job is scheduled.

    `requested(wildcards, input, threads, attempt)` gives the rule's own value;
    `run_settings()` gives (the run's global gpu resource or None, whether the rule runs on this
    machine, whether this is a dry run), or None where no check applies (inside a job a cluster
    has already granted, or a run planned for a cluster scheduler).  A dry run never fails on
    GPUs: the message goes to `warn`, once per rule.  Otherwise the check raises here, in plain
    Python, so that Snakemake reports the error message itself.
    """
    warned: list[str] = []

    def gpu(wildcards, input, threads, attempt):
        value = requested(wildcards, input, threads, attempt)
        settings = run_settings()
        # Not yet known (e.g. depends on an input that does not exist yet): checked later.
        if settings is None or isinstance(value, str):
            return value
        available, runs_locally, dry_run = settings
        try:
            return check_gpu_request(value, available, runs_locally=runs_locally, rule=rule)
        except GpuResourceError as err:
            if not dry_run or isinstance(value, bool) or not isinstance(value, int):
                raise
            if warn is not None and not warned:
                warned.append(str(err))
                warn(f"dry run: {err}")
            return value

    return gpu
