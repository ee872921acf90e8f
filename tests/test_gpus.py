"""Each GPU job on a workstation gets devices of its own (obsscale.core.gpus)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from obsscale.core import gpus
from obsscale.core.gpus import GpuClaimError, claim_gpus

SRC = str(Path(__file__).resolve().parents[1] / "src")


@pytest.fixture
def clean_env(monkeypatch):
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    yield
    while gpus._HELD:
        os.close(gpus._HELD.pop())


def claim_elsewhere(n: int, lock_dir: Path, timeout: float = 0.3) -> subprocess.CompletedProcess:
    code = (
        "import os, sys; from obsscale.core.gpus import claim_gpus; "
        f"print(claim_gpus({n}, visible=['0', '1'], lock_dir={str(lock_dir)!r}, timeout={timeout}, poll=0.1)); "
        "print(os.environ['CUDA_VISIBLE_DEVICES'])"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("SLURM_JOB_ID", "CUDA_VISIBLE_DEVICES")}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**env, "PYTHONPATH": SRC}, timeout=60)


def test_concurrent_jobs_get_different_devices(tmp_path, clean_env):
    assert claim_gpus(1, visible=["0", "1"], lock_dir=tmp_path) == ["0"]
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "0"
    other = claim_elsewhere(1, tmp_path)
    assert other.returncode == 0, other.stderr
    assert other.stdout.split() == ["['1']", "1"]
    # Device 0 is still held here: two devices cannot be had.
    busy = claim_elsewhere(2, tmp_path)
    assert busy.returncode != 0 and "became free within" in busy.stderr
    # Released when the holder exits: the device is free again.
    os.close(gpus._HELD.pop())
    again = claim_elsewhere(2, tmp_path)
    assert again.returncode == 0 and again.stdout.split()[-1] == "0,1", again.stderr


def test_cpu_jobs_see_no_gpu_and_slurm_jobs_keep_theirs(tmp_path, clean_env, monkeypatch):
    assert claim_gpus(0, visible=["0"], lock_dir=tmp_path) == []
    assert os.environ["CUDA_VISIBLE_DEVICES"] == ""
    monkeypatch.setenv("SLURM_JOB_ID", "42")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3")
    assert claim_gpus(1, visible=["0"], lock_dir=tmp_path) is None
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "3"


def test_more_gpus_than_the_machine_has_is_one_clear_error(tmp_path, clean_env):
    with pytest.raises(GpuClaimError, match=r"needs 3 GPU\(s\), this machine shows 2 \(0,1\)"):
        claim_gpus(3, visible=["0", "1"], lock_dir=tmp_path)
