"""Where rules run and GPU requests (obsscale.cluster, workflow/rules/cluster.smk)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from obsscale.cluster import GpuResourceError, RuleInfo, check_gpu_request, submitting_node_rules

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = Path(sys.executable).with_name("snakemake")


def test_analysis_rules_run_on_the_submitting_node_but_never_gpu_rules():
    rules = [
        RuleInfo("capability_pca", "/w/workflow/rules/pca.smk", declares_gpu=False),
        RuleInfo("import_scores", "/w/workflow/rules/scores.smk", declares_gpu=False),
        RuleInfo("plot_pcs", "/w/workflow/rules/figures.smk", declares_gpu=True),
        RuleInfo("evaluate_model", "/w/workflow/rules/eval.smk", declares_gpu=True),
        RuleInfo("sample_passuntil", "/w/workflow/rules/passuntil.smk", declares_gpu=False),
    ]
    assert submitting_node_rules(rules, ["pca.smk", "scores.smk", "figures.smk"]) == [
        "capability_pca",
        "import_scores",
    ]
    assert submitting_node_rules(rules, []) == []


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
