# Cluster execution (docs/cluster.md): which rules run on the submitting node, and GPU requests
# that fail with a clear message.  Included last by the Snakefile, once every rule exists.
#
# Cheap analysis rules carry `localrule: LOCAL_ANALYSIS` (common.smk): under a cluster executor
# they run on the submitting node instead of queueing one job each, so a paper reproduction does
# not wait for hundreds of tiny jobs.  `cluster: {local_analysis: false}` in the config submits
# them as jobs too (for clusters where nothing may run on the login node).  Rules that declare a
# `gpu` resource must not be local; that is checked here.

# Imported under other names: the Snakefile namespace already has Snakemake's own `RuleInfo`.
from snakemake.logging import logger as _logger
from snakemake.resources import Resource as _Resource

import obsscale.stages.cluster as _cluster

# Snakemake keeps the names of rules marked `localrule: True` (or listed by `localrules:`) in
# this set and has no public accessor for it (snakemake is pinned in requirements.txt); it is
# only read here, the rules themselves say whether they are local.
_cluster.check_local_rules(
    _cluster.RuleInfo(r.name, r.name in workflow._localrules, "gpu" in r.resources)
    for r in workflow.rules
)


def _planned_for_slurm(rule):
    # The profile's `default-resources` (profiles/slurm) give every rule slurm_* resources.  A dry
    # run replaces the cluster executor by Snakemake's "dryrun" one, so this is how a dry run
    # knows that the real run will ask the scheduler for the GPUs.
    return any(name.startswith("slurm_") for name in rule.resources.keys())


def _gpu_run_settings(rule):
    def settings():
        # Inside a cluster job (exec mode remote) the scheduler has already granted the GPUs.
        if not workflow.is_main_process:
            return None
        if workflow.dryrun and _planned_for_slurm(rule):
            return None
        available = dict(workflow.global_resources.unwrapped_items()).get("gpu")
        return available, workflow.is_local(rule), workflow.dryrun

    return settings


def _declared_gpus(declared):
    def requested(wildcards, input, threads, attempt):
        return declared.evaluate(
            wildcards,
            input=input,
            threads=threads,
            attempt=attempt,
            async_run=workflow.async_run,
        ).value

    return requested


def _gpu_warning(message):
    _logger.warning(message)


# Every job's `gpu` request is checked against the run's settings before it is scheduled, so
# that a GPU job on a machine declared without GPUs stops the run with a message naming the rule
# and the flags to add (obsscale.stages.cluster.check_gpu_request).  A dry run only warns, and
# under a cluster executor the scheduler is asked for the GPUs instead.
for _r in list(workflow.rules):
    if "gpu" in _r.resources:
        _r.resources["gpu"] = _Resource(
            "gpu",
            _cluster.checked_gpu_resource(
                _r.name,
                _declared_gpus(_r.resources["gpu"]),
                _gpu_run_settings(_r),
                _gpu_warning,
            ),
        )
