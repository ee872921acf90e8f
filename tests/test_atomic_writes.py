"""Atomic writes: the temporary of a killed writer is removed, a live writer's is kept."""

from __future__ import annotations

import os
import subprocess
import sys

from obsscale.core import io


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_killed_writers_temporary_is_removed_and_a_live_ones_kept(tmp_path):
    dead = tmp_path / f".t.csv.{io._HOST}-{_dead_pid()}.abc123.tmp"
    live = tmp_path / f".t.csv.{io._HOST}-{os.getpid()}.def456.tmp"
    other_host = tmp_path / ".t.csv.elsewhere-1.ghi789.tmp"
    for p in (dead, live, other_host):
        p.write_text("partial")
    io.write_text("done\n", tmp_path / "t.csv")
    assert (tmp_path / "t.csv").read_text() == "done\n"
    assert not dead.exists() and live.exists() and other_host.exists()
    live.unlink()
    assert sorted(p.name for p in tmp_path.iterdir()) == [other_host.name, "t.csv"]


def test_sweep_of_a_results_folder(tmp_path):
    sub = tmp_path / "figures"
    sub.mkdir()
    stale = sub / f".fig.png.{io._HOST}-{_dead_pid()}.x1.tmp"
    stale.write_bytes(b"")
    assert io.remove_stale_temporaries(tmp_path) == [stale]
    assert not stale.exists()
