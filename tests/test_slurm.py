"""The workflow on a real SLURM: a one-node cluster on localhost, driven through profiles/slurm.

The module fixture installs and starts SLURM with tests/slurm/start-cluster.sh (root and apt-get
needed; the tests are skipped with the reason otherwise) and stops the daemons it started at the
end.  Run alone with `pytest -m slurm`.

What is checked against the scheduler itself:
  - every job Snakemake says it submitted is in SLURM's job-completion log (JobCompType=jobcomp/
    filetxt) and in `squeue --states=all`, under the run's job name, and the job really ran
    inside that SLURM job (it wrote $SLURM_JOB_ID);
  - a job cancelled with `scancel` while running is submitted again (retries: 1) and the run
    completes; the completion log shows the first job CANCELLED and the second COMPLETED;
  - outputs equal those of a run with profiles/local;
  - an unknown partition stops the run with SLURM's own message naming the partition;
  - a rule's `gpu` resource reaches SLURM as a GPU request (`sbatch --gpus=N`);
  - the evaluation stage's jobs are submitted with their model sheet row's GPUs (and GPU model),
    CPUs, memory and time limit;
  - the project's workflow (analysis-only targets of the default paper reproduction) gives the
    same tables through SLURM as on one workstation, its analysis rules run on the submitting
    node by default, and with `cluster: {local_analysis: false}` every one is a SLURM job.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[1]
SLURM_DIR = REPO / "tests" / "slurm"
TEST_SNAKEFILE = SLURM_DIR / "Snakefile"
SNAKEMAKE = Path(sys.executable).with_name("snakemake")
# Keep the test short: the plugin's first status check after 2 s instead of 40 s.  The cluster's
# MinJobAge (300 s) stays above 3 x this, so the plugin keeps using squeue.
FAST = ["--slurm-init-seconds-before-status-checks", "2"]
SUBMITTED = re.compile(r"has been submitted with SLURM jobid (\d+)")
RUN_ID = re.compile(r"SLURM run ID: (\S+)")


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO / "src")
    env["HF_HUB_OFFLINE"] = "1"
    env["HF_DATASETS_OFFLINE"] = "1"
    # Jobs inherit this environment (sbatch --export=ALL); the venv's python must come first.
    env["PATH"] = f"{SNAKEMAKE.parent}:{env.get('PATH', '')}"
    return env


def _controller_up() -> bool:
    if shutil.which("scontrol") is None:
        return False
    out = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, timeout=30)
    return out.returncode == 0 and " is UP" in out.stdout


@pytest.fixture(scope="module")
def slurm_cluster():
    """Start the test cluster (installing SLURM if needed); stop it afterwards if we started it."""
    if os.geteuid() != 0:
        pytest.skip("starting a SLURM test cluster needs root (package install, daemons)")
    if shutil.which("slurmctld") is None and shutil.which("apt-get") is None:
        pytest.skip("SLURM is not installed and apt-get is not available to install it")
    was_running = _controller_up()
    start = subprocess.run(
        ["bash", str(SLURM_DIR / "start-cluster.sh")],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert start.returncode == 0, f"start-cluster.sh failed:\n{start.stdout}\n{start.stderr}"
    config = subprocess.run(
        ["scontrol", "show", "config"], capture_output=True, text=True, check=True
    ).stdout
    jobcomp = re.search(r"^JobCompLoc\s*=\s*(\S+)", config, re.M)
    assert jobcomp, "the test cluster has no job-completion log (JobCompLoc)"
    yield {"jobcomp_log": Path(jobcomp.group(1))}
    if not was_running:
        subprocess.run(["bash", str(SLURM_DIR / "stop-cluster.sh")], check=True, timeout=120)


def snakemake(args, workdir: Path, timeout: int = 240) -> subprocess.CompletedProcess:
    """Run Snakemake in `workdir`; SIGINT on timeout (it waits out SIGTERM while jobs run)."""
    cmd = ["timeout", "-s", "INT", str(timeout), str(SNAKEMAKE), *map(str, args)]
    return subprocess.run(cmd, cwd=workdir, env=_env(), capture_output=True, text=True)


@contextlib.contextmanager
def running_snakemake(args, workdir: Path, log_path: Path, timeout: int = 300):
    """Snakemake in the background, output to `log_path` (see `snakemake`).  Interrupted on leaving
    the block if still running (a failed test), which also cancels its SLURM jobs."""
    cmd = ["timeout", "-s", "INT", str(timeout), str(SNAKEMAKE), *map(str, args)]
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, cwd=workdir, env=_env(), stdout=log, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def completion_records(jobcomp_log: Path) -> dict[str, dict[str, str]]:
    """SLURM's job-completion log as {job id: {field: value}}."""
    records = {}
    if jobcomp_log.exists():
        for line in jobcomp_log.read_text().splitlines():
            fields = dict(re.findall(r"(\w+)=(\S*)", line))
            if "JobId" in fields:
                records[fields["JobId"]] = fields
    return records


def wait_for_records(jobcomp_log: Path, job_ids, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while True:
        records = completion_records(jobcomp_log)
        if all(j in records for j in job_ids) or time.monotonic() > deadline:
            return records
        time.sleep(0.5)


def squeue_states(run_id: str) -> dict[str, str]:
    out = subprocess.run(
        ["squeue", "--states=all", "--noheader", "--format=%i|%T", "--name", run_id],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return dict(line.split("|", 1) for line in out.split())


def _log(result) -> str:
    return f"--- stdout\n{result.stdout[-6000:]}\n--- stderr\n{result.stderr[-10000:]}"


def test_jobs_go_through_slurm_and_a_cancelled_job_is_retried(slurm_cluster, tmp_path):
    slurm_dir, local_dir = tmp_path / "slurm", tmp_path / "local"
    slurm_dir.mkdir()
    local_dir.mkdir()
    common = ["-s", TEST_SNAKEFILE, "--config", "slow_seconds=10"]

    # The run on one workstation, for comparison, meanwhile.
    local_args = [*common, "--profile", REPO / "profiles" / "local"]
    slurm_args = [*common, "--profile", REPO / "profiles" / "slurm", *FAST, "--retries", "1"]
    log_path = tmp_path / "slurm_run.log"
    with (
        running_snakemake(local_args, local_dir, tmp_path / "local.log") as local,
        running_snakemake(slurm_args, slurm_dir, log_path) as proc,
    ):
        # Cancel the first slow job as soon as it runs inside SLURM.
        marker = slurm_dir / "out" / "slow_started_10.txt"
        deadline = time.monotonic() + 180
        while not (marker.exists() and marker.read_text().strip()):
            assert proc.poll() is None, log_path.read_text()[-6000:]
            assert time.monotonic() < deadline, "the slow job never started"
            time.sleep(0.5)
        cancelled = marker.read_text().split()[0]
        subprocess.run(["scancel", cancelled], check=True)
        rc = proc.wait(timeout=320)
        local_rc = local.wait(timeout=300)
    run_log = log_path.read_text()
    assert rc == 0, run_log[-8000:]

    # The scheduler's own records list every job Snakemake submitted, under this run's name.
    submitted = SUBMITTED.findall(run_log)
    run_id = RUN_ID.search(run_log).group(1)
    # make_numbers x2, slow_sum x2 + one resubmission
    assert len(submitted) == 5, run_log[-8000:]
    assert cancelled in submitted
    records = wait_for_records(slurm_cluster["jobcomp_log"], submitted)
    for job_id in submitted:
        assert job_id in records, f"SLURM has no completion record of job {job_id}"
        assert records[job_id]["Name"] == run_id
    assert records[cancelled]["JobState"] == "CANCELLED"
    assert sorted(squeue_states(run_id)) == sorted(submitted)

    # The cancelled job was submitted again as a new SLURM job, which completed.
    starts = marker.read_text().split()
    assert len(starts) == 2 and starts[0] == cancelled and starts[1] != cancelled
    assert records[starts[1]]["JobState"] == "COMPLETED"
    # Each job ran inside the SLURM job Snakemake submitted for it.
    for n in (10, 20):
        assert (slurm_dir / "out" / f"numbers_{n}.txt.jobid").read_text().strip() in submitted

    # Same outputs as on one workstation.
    assert local_rc == 0, (tmp_path / "local.log").read_text()[-8000:]
    for name in ["numbers_10.txt", "numbers_20.txt", "sum_10.txt", "sum_20.txt"]:
        assert (slurm_dir / "out" / name).read_text() == (local_dir / "out" / name).read_text()
    assert (local_dir / "out" / "sum_10.txt").read_text().strip() == "45"
    assert (local_dir / "out" / "sum_20.txt").read_text().strip() == "190"


def test_unknown_partition_is_reported(slurm_cluster, tmp_path):
    result = snakemake(
        [
            "-s", TEST_SNAKEFILE, "out/numbers_3.txt",
            "--profile", REPO / "profiles" / "slurm", *FAST, "--retries", "0",
            "--set-resources", "make_numbers:slurm_partition='no_such_partition'",
        ],
        tmp_path,
        timeout=120,
    )  # fmt: skip
    assert result.returncode != 0
    text = result.stdout + result.stderr
    assert "invalid partition specified: no_such_partition" in text, _log(result)
    assert not (tmp_path / "out" / "numbers_3.txt").exists()


# The analysis-only part of the default configuration: score import, capability PCA, family laws.
ANALYSIS_TARGETS = ["results/pca/base8/scores.csv", "results/family_laws/base8/pc_vs_log10_flops.csv"]
WORKFLOW_FILES = ["Snakefile", "workflow", "config", "resources", "envs"]


def _copy_workflow(dest: Path) -> Path:
    dest.mkdir()
    for name in WORKFLOW_FILES:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, dest / name)
    return dest


def _csv_tables(root: Path) -> dict[str, pd.DataFrame]:
    return {
        str(p.relative_to(root)): pd.read_csv(p) for p in sorted((root / "results").rglob("*.csv"))
    }


def test_project_workflow_through_slurm_equals_a_local_run(slurm_cluster, tmp_path):
    slurm_dir = _copy_workflow(tmp_path / "slurm")
    local_dir = _copy_workflow(tmp_path / "local")
    slurm_profile = ["--profile", REPO / "profiles" / "slurm"]
    submit_all = ["--configfile", SLURM_DIR / "submit-all.yaml"]

    # By default the cheap analysis rules run on the submitting node: no job is queued.
    first = snakemake(["results/scores/base.csv", *slurm_profile, *FAST], slurm_dir, timeout=180)
    assert first.returncode == 0, _log(first)
    assert "localrule import_scores:" in first.stdout + first.stderr, _log(first)
    assert not SUBMITTED.search(first.stdout + first.stderr)
    # With `cluster: {local_analysis: false}` they are submitted, here so that every further job
    # of the project's workflow passes through the scheduler.
    local_args = [*ANALYSIS_TARGETS, "--profile", REPO / "profiles" / "local"]
    slurm_args = [*ANALYSIS_TARGETS, *slurm_profile, *FAST, *submit_all]
    with running_snakemake(local_args, local_dir, tmp_path / "local.log", timeout=420) as local:
        run = snakemake(slurm_args, slurm_dir, timeout=420)
        local_rc = local.wait(timeout=420)
    assert run.returncode == 0, _log(run)
    text = run.stdout + run.stderr
    assert "localrule" not in text
    submitted = SUBMITTED.findall(text)
    ran = re.findall(r"^rule (\w+):", text, re.M)
    assert "capability_base8" in ran  # the capability space, family laws and NMF of base8
    assert len(submitted) == len(ran), text[-8000:]
    run_id = RUN_ID.search(text).group(1)
    records = wait_for_records(slurm_cluster["jobcomp_log"], submitted)
    for job_id in submitted:
        assert records[job_id]["Name"] == run_id
        assert records[job_id]["JobState"] == "COMPLETED"
        assert records[job_id]["WorkDir"] == str(slurm_dir)

    assert local_rc == 0, (tmp_path / "local.log").read_text()[-8000:]
    slurm_tables, local_tables = _csv_tables(slurm_dir), _csv_tables(local_dir)
    assert set(slurm_tables) == set(local_tables)
    assert set(ANALYSIS_TARGETS) <= set(slurm_tables)
    for name, table in local_tables.items():
        pd.testing.assert_frame_equal(slurm_tables[name], table, check_exact=False, rtol=1e-9)


def test_gpu_resource_becomes_a_gpu_request_to_slurm(slurm_cluster, tmp_path):
    # `resources: gpu=1` is submitted as `sbatch --gpus=1`; the test cluster has no GPUs, so
    # SLURM itself refuses the job and the run stops with its message.
    result = snakemake(
        ["-s", TEST_SNAKEFILE, "out/gpu.txt", "--profile", REPO / "profiles" / "slurm",
         *FAST, "--retries", "0"],
        tmp_path,
        timeout=120,
    )  # fmt: skip
    assert result.returncode != 0
    text = result.stdout + result.stderr
    assert "--gpus=1" in text, _log(result)
    assert "Invalid generic resource (gres) specification" in text, _log(result)


def test_evaluation_jobs_ask_slurm_for_the_sheets_resources(slurm_cluster, tmp_path):
    # A GPU row (model, CPUs, memory, time of its own) and a CPU row: the sbatch calls the plugin
    # makes carry them.  The test cluster has no GPUs (SLURM refuses the GPU job) and no hub (the
    # CPU job fails offline inside SLURM): only the submissions are checked here.
    import yaml

    work = _copy_workflow(tmp_path / "work")
    (work / "sheet.tsv").write_text(
        "model\tfamily\tbackend\tgpus\tgpu_model\tthreads\tmem_gb\truntime_min\n"
        "EleutherAI/pythia-1b-deduped\tPythia\tvllm\t1\ta100\t6\t1\t30\n"
        "EleutherAI/pythia-160m-deduped\tPythia\thf\t0\t\t2\t1\t20\n"
    )
    config = yaml.safe_load((REPO / "config/evaluation-example.yaml").read_text())
    config["evaluation"]["model_sheet"] = "sheet.tsv"
    (work / "eval.yaml").write_text(yaml.safe_dump(config))
    targets = [f"results/eval/runs/EleutherAI__pythia-{m}-deduped/base.json" for m in ("1b", "160m")]
    result = snakemake(
        [*targets, "--profile", REPO / "profiles" / "slurm", *FAST, "--retries", "0", "--keep-going",
         "--verbose", "--configfile", "eval.yaml"],
        work,
        timeout=300,
    )  # fmt: skip
    text = result.stdout + result.stderr
    calls = re.findall(r"sbatch call: (.*)", text)
    gpu = [c for c in calls if "pythia-1b" in c]
    cpu = [c for c in calls if "pythia-160m" in c]
    assert gpu and cpu, _log(result)
    assert "--gpus=a100:1" in gpu[0] and "--cpus-per-task=6" in gpu[0] and "--mem 1024" in gpu[0], gpu[0]
    assert "-t 30" in gpu[0], gpu[0]
    assert "--gpus" not in cpu[0] and "--cpus-per-task=2" in cpu[0] and "--mem 1024" in cpu[0], cpu[0]
    assert "-t 20" in cpu[0], cpu[0]
    assert "Invalid generic resource (gres) specification" in text or "node configuration" in text
