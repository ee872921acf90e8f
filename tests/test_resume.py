"""Reproducible to the byte, and resumable after a hard kill by the README's commands.

A small config (two experiments, the capability stage) is run twice from an empty results/: every
CSV, PNG and PDF must be byte-identical.  A third run is killed with SIGKILL (the whole process
group: Snakemake and its jobs) at three points — while the capability stage runs, while the fits
run, while the figures are drawn — and after each kill resumed by exactly the README's commands,
`snakemake --unlock` then the same command.  It must end with the same bytes as the clean runs and
leave no temporary file of an atomic write in results/.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import ROOT, SNAKEMAKE, make_workdir

pytestmark = pytest.mark.slow

# PDFs as well as PNGs (the default draws PNGs only): their bytes must repeat too.
SMALL = """\
figure_formats: [png, pdf]
law_figures: []
selection: {enabled: false}
experiments:
  emergent: {enabled: false}
  emergent_arithmetic: {enabled: false}
  emergent_arithmetic_cutoff84: {enabled: false}
  emergent_pushed_cutoffs: {overview: true, n_boot: 20}
  single_family_qwen15: {enabled: false}
  single_family_opt: {overview: true}
  agentic: {enabled: false}
  agentic_80_20: {enabled: false}
  post_training: {enabled: false}
"""
# The command a user types (README.md, "Interrupted runs"), and the unlock before it.
COMMAND = [*SNAKEMAKE, "-s", str(ROOT / "Snakefile"), "--cores", "2", "--configfile", "small.yaml"]
UNLOCK = [*SNAKEMAKE, "-s", str(ROOT / "Snakefile"), "--unlock", "--configfile", "small.yaml"]
COMPARED = (".csv", ".png", ".pdf")


def workdir(path: Path) -> Path:
    work = make_workdir(path)
    (work / "small.yaml").write_text(SMALL)
    return work


def run(work: Path, cmd=COMMAND) -> None:
    proc = subprocess.run(cmd, cwd=work, capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stderr[-4000:]


def results(work: Path) -> dict[str, bytes]:
    out = {}
    for p in sorted((work / "results").rglob("*")):
        if p.is_file() and p.suffix in COMPARED:
            out[str(p.relative_to(work))] = p.read_bytes()
    return out


def kill_when(work: Path, ready) -> str:
    """Start the command; SIGKILL its process group as soon as `ready(work)` holds."""
    proc = subprocess.Popen(COMMAND, cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.monotonic() + 1200
    try:
        while time.monotonic() < deadline:
            if ready(work):
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                return "killed"
            if proc.poll() is not None:
                return f"finished before the kill point (exit {proc.returncode})"
            time.sleep(0.05)
        raise AssertionError("kill point not reached")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _exists(*names):
    return lambda work: all((work / n).exists() for n in names)


def _any_figure_csv(work: Path) -> bool:
    return any((work / "results/figures").glob("fig*.csv"))


KILL_POINTS = {
    "capability stage": _exists("results/scores/base.csv"),
    "fits": _exists("results/fits/single_family_opt.csv"),
    "figures": _any_figure_csv,
}


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> dict[str, bytes]:
    work = workdir(tmp_path_factory.mktemp("clean"))
    run(work)
    return results(work)


def test_two_clean_runs_give_identical_bytes(clean, tmp_path):
    work = workdir(tmp_path / "again")
    run(work)
    again = results(work)
    assert sorted(again) == sorted(clean)
    differ = [name for name in clean if clean[name] != again[name]]
    assert not differ, differ
    assert any(n.endswith(".png") for n in clean) and any(n.endswith(".pdf") for n in clean)


def test_hard_kills_resume_by_the_documented_commands(clean, tmp_path):
    work = workdir(tmp_path / "killed")
    outcomes = {}
    for point, ready in KILL_POINTS.items():
        outcomes[point] = kill_when(work, ready)
        run(work, UNLOCK)
    run(work)  # the same command, once more, to the end
    assert all(o == "killed" for o in outcomes.values()), outcomes
    resumed = results(work)
    assert sorted(resumed) == sorted(clean)
    differ = [name for name in clean if clean[name] != resumed[name]]
    assert not differ, differ
    leftovers = [str(p) for p in (work / "results").rglob("*.tmp")]
    assert not leftovers, leftovers
