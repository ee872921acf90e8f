"""Where rules run and GPU requests (obsscale.stages.cluster, workflow/rules/cluster.smk)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from obsscale.stages.cluster import GpuResourceError, RuleInfo, check_gpu_request, check_local_rules

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = Path(sys.executable).with_name("snakemake")


def test_local_rules_are_listed_and_gpu_rules_may_not_be_local():
    rules = [
        RuleInfo("capability_pca", local=True, declares_gpu=False),
        RuleInfo("import_scores", local=True, declares_gpu=False),
        RuleInfo("evaluate_model", local=False, declares_gpu=True),
        RuleInfo("sample_passuntil", local=False, declares_gpu=False),
    ]
    assert check_local_rules(rules) == ["capability_pca", "import_scores"]
    with pytest.raises(GpuResourceError, match="'evaluate_model', 'score_gpu' declare a 'gpu'"):
        check_local_rules(
            [*rules, RuleInfo("evaluate_model", True, True), RuleInfo("score_gpu", True, True)]
        )


@pytest.mark.parametrize(
    "requested, available, local, expected",
    [
        (0, None, True, 0),  # CPU job: nothing to check
        (1, 2, True, 1),
        (2, 2, True, 2),
        (4, None, False, 4),  # a cluster job asks the scheduler itself
        (4, 0, False, 4),
    ],
)
def test_gpu_requests_that_can_be_met(requested, available, local, expected):
    assert check_gpu_request(requested, available, runs_locally=local) == expected


@pytest.mark.parametrize(
    "requested, available, message",
    [
        (1, None, "declares no 'gpu' resource"),
        (1, 0, "declares no GPUs (gpu=0)"),
        (3, 2, "declares only 2 GPU(s) (gpu=2)"),
        (-1, 2, "whole number of GPUs"),
        ("a100", 2, "whole number of GPUs"),
        (True, 2, "whole number of GPUs"),
    ],
)
def test_gpu_requests_that_cannot_be_met_name_the_rule_and_the_fix(requested, available, message):
    with pytest.raises(GpuResourceError) as err:
        check_gpu_request(requested, available, runs_locally=True, rule="evaluate_model")
    assert message in str(err.value)
    assert "rule 'evaluate_model'" in str(err.value)


GPU_WORKFLOW = """
rule all:
    input: ["a.txt", "b.txt"]

rule on_gpu:
    output: "{{name}}.txt"
    resources: gpu=lambda wildcards: 1
    shell: "echo {{wildcards.name}} > {{output}}"

include: {cluster_smk!r}
"""


def _dry_run(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess:
    snakefile = tmp_path / "Snakefile"
    snakefile.write_text(
        GPU_WORKFLOW.format(cluster_smk=str(REPO / "workflow" / "rules" / "cluster.smk"))
    )
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    return subprocess.run(
        [str(SNAKEMAKE), "-s", str(snakefile), "-d", str(tmp_path), "-n", "--cores", "2", *extra],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


@pytest.mark.slow
def test_a_local_gpu_job_without_a_gpu_resource_stops_the_run_with_the_fix(tmp_path):
    result = _dry_run(tmp_path)
    assert result.returncode != 0
    text = result.stdout + result.stderr
    assert "rule 'on_gpu' needs 1 GPU(s) per job" in text, text[-3000:]
    assert "declares no 'gpu' resource" in text

    result = _dry_run(tmp_path, "--resources", "gpu=0")
    assert result.returncode != 0
    assert "declares no GPUs (gpu=0)" in result.stdout + result.stderr

    result = _dry_run(tmp_path, "--resources", "gpu=1")
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
