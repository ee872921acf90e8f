"""Shared fixtures: a copy of the workflow in a temporary directory, and Snakemake runs in it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")


def make_workdir(dest: Path) -> Path:
    """A working directory with the workflow's config and shipped data copied (not linked), so a
    test may touch or break its inputs without affecting the checkout."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("config", "resources"):
        shutil.copytree(ROOT / name, dest / name, dirs_exist_ok=True)
    return dest


def run_snakemake(workdir: Path, *args: str, check: bool = True, timeout: float = 900) -> subprocess.CompletedProcess:
    cmd = [*SNAKEMAKE, "-s", str(ROOT / "Snakefile"), "--directory", str(workdir), "--cores", "2", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=workdir)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}")
    return proc


@pytest.fixture(scope="session")
def paper_run(tmp_path_factory) -> Path:
    """The default configuration (the paper reproduction from the shipped scores), run once."""
    workdir = make_workdir(tmp_path_factory.mktemp("paper"))
    run_snakemake(workdir)
    return workdir
