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
# What a GPU shortage message must name: the exact flags on a workstation and on a cluster.
FLAGS = ("--resources gpu=N", "--profile profiles/local", "--profile profiles/slurm")


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
    if "whole number" not in message:
        # The exact flags that fix it, on a workstation and on a cluster.
        assert all(flag in str(err.value) for flag in FLAGS), str(err.value)


GPU_WORKFLOW = """
rule all:
    input: ["a.txt", "b.txt"]

rule on_gpu:
    output: "{{name}}.txt"
    resources: gpu=lambda wildcards: 1
    shell: "echo {{wildcards.name}} > {{output}}"

include: {cluster_smk!r}
"""


def _run(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess:
    snakefile = tmp_path / "Snakefile"
    snakefile.write_text(
        GPU_WORKFLOW.format(cluster_smk=str(REPO / "workflow" / "rules" / "cluster.smk"))
    )
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    return subprocess.run(
        [str(SNAKEMAKE), "-s", str(snakefile), "-d", str(tmp_path), *extra],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


@pytest.mark.slow
def test_a_local_gpu_job_without_a_gpu_resource_stops_the_run_with_the_fix(tmp_path):
    result = _run(tmp_path, "--cores", "2")
    assert result.returncode != 0
    text = result.stdout + result.stderr
    assert "rule 'on_gpu' needs 1 GPU(s) per job" in text, text[-3000:]
    assert "declares no 'gpu' resource" in text
    assert all(flag in text for flag in FLAGS), text[-3000:]
    assert not (tmp_path / "a.txt").exists()

    result = _run(tmp_path, "--cores", "2", "--resources", "gpu=0")
    assert result.returncode != 0
    assert "declares no GPUs (gpu=0)" in result.stdout + result.stderr

    result = _run(tmp_path, "--cores", "2", "--resources", "gpu=1")
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    assert (tmp_path / "a.txt").read_text().strip() == "a"


@pytest.mark.slow
def test_a_dry_run_never_fails_on_gpus(tmp_path):
    # On a workstation: planned, with the message as a warning, once for the rule.
    result = _run(tmp_path, "-n", "--cores", "2")
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    text = result.stdout + result.stderr
    assert text.count("dry run: rule 'on_gpu' needs 1 GPU(s) per job") == 1, text[-3000:]
    assert "--resources gpu=N" in text
    # Planned for SLURM: the scheduler grants the GPUs, so nothing to say.
    result = _run(tmp_path, "-n", "--profile", str(REPO / "profiles" / "slurm"))
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    assert "GPU(s) per job" not in result.stdout + result.stderr


# The model sheet's resources on their way to SLURM: a GPU row and a CPU row of the evaluation stage,
# planned with profiles/slurm and turned into the sbatch call by the executor plugin's own code.
SLURM_SHEET = (
    "model\tfamily\tbackend\tdtype\tgpus\tgpu_model\tthreads\tmem_gb\truntime_min\n"
    "EleutherAI/pythia-1b-deduped\tPythia\tvllm\tbfloat16\t1\ta100\t6\t24\t120\n"
    "EleutherAI/pythia-160m-deduped\tPythia\thf\tfloat32\t0\t\t\t8\t600\n"
    "mistralai/Mistral-7B-v0.1\tMistral\tvllm\tbfloat16\t2\t\t\t64\t480\n"
)
SLURM_TARGETS = [
    "results/eval/runs/EleutherAI__pythia-1b-deduped/base.json",
    "results/eval/runs/EleutherAI__pythia-160m-deduped/base.json",
    "results/eval/runs/mistralai__Mistral-7B-v0.1/base.json",
]


def slurm_eval_workdir(tmp_path: Path) -> Path:
    import shutil

    import yaml

    work = tmp_path / "work"
    for name in ("config", "resources"):
        shutil.copytree(REPO / name, work / name)
    (work / "sheet.tsv").write_text(SLURM_SHEET)
    config = yaml.safe_load((REPO / "config/evaluation-example.yaml").read_text())
    config["evaluation"]["model_sheet"] = "sheet.tsv"
    (work / "eval.yaml").write_text(yaml.safe_dump(config))
    return work


def _plan_eval_jobs(work: Path, *extra: str):
    from support.slurm_plan import planned_jobs

    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    result = subprocess.run(
        [str(SNAKEMAKE), *SLURM_TARGETS, "-s", str(REPO / "Snakefile"), "-d", str(work), "-n",
         "--profile", str(REPO / "profiles" / "slurm"), "--configfile", "eval.yaml", *extra],
        capture_output=True, text=True, env=env, timeout=300, cwd=work,
    )  # fmt: skip
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    jobs = {j.wildcards["model"]: j for j in planned_jobs(result.stdout) if j.rule == "eval_run"}
    assert len(jobs) == 3, result.stdout[-4000:]
    return jobs


@pytest.mark.slow
def test_sheet_resources_reach_the_sbatch_call(tmp_path):
    from support.slurm_plan import sbatch_command

    work = slurm_eval_workdir(tmp_path)
    jobs = _plan_eval_jobs(work)
    gpu = sbatch_command(jobs["EleutherAI__pythia-1b-deduped"])
    assert "--gpus=a100:1" in gpu and "--cpus-per-task=6" in gpu, gpu
    assert "--mem 24576" in gpu and "-t 120" in gpu, gpu
    cpu = sbatch_command(jobs["EleutherAI__pythia-160m-deduped"])
    # No GPU, the hf backend's default of 4 CPUs, the row's memory and time.
    assert "--gpus" not in cpu and "--ntasks=1" in cpu and "--cpus-per-task=4" in cpu, cpu
    assert "--mem 8192" in cpu and "-t 600" in cpu, cpu
    two = sbatch_command(jobs["mistralai__Mistral-7B-v0.1"])
    assert "--gpus=2" in two and "--cpus-per-task=8" in two, two  # vllm's default CPUs

    # cpus_per_gpu (docs/cluster.md) replaces the CPUs per task of GPU jobs only.
    jobs = _plan_eval_jobs(work, "--set-resources", "eval_run:cpus_per_gpu=8")
    gpu = sbatch_command(jobs["EleutherAI__pythia-1b-deduped"])
    assert "--cpus-per-gpu=8" in gpu and "--cpus-per-task" not in gpu, gpu
    assert "--cpus-per-task=4" in sbatch_command(jobs["EleutherAI__pythia-160m-deduped"])
