"""Result files are written whole (atomic rename) and readable as the umask allows."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap

import pandas as pd
import pytest

from obsscale.core.io import atomic_path, current_umask, write_csv, write_json, write_text


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def umask():
    """Set the process umask for one test, restore it afterwards."""
    saved = os.umask(0o022)
    os.umask(saved)
    yield lambda mask: os.umask(mask)
    os.umask(saved)


@pytest.mark.parametrize("mask, expected", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_written_files_get_the_mode_of_the_umask(tmp_path, umask, mask, expected):
    umask(mask)
    assert current_umask() == mask
    write_csv(pd.DataFrame({"a": [1]}), tmp_path / "t.csv")
    write_json({"a": 1}, tmp_path / "t.json")
    write_text("x", tmp_path / "t.txt")
    with atomic_path(tmp_path / "t.bin") as tmp:
        tmp.write_bytes(b"\0")
    for name in ("t.csv", "t.json", "t.txt", "t.bin"):
        assert _mode(tmp_path / name) == expected, f"{name}: {oct(_mode(tmp_path / name))}"


def test_a_failed_write_leaves_neither_file_nor_temporary(tmp_path):
    with pytest.raises(RuntimeError):
        with atomic_path(tmp_path / "out.csv") as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []


def test_a_rule_job_writes_files_collaborators_can_read(tmp_path):
    """A workflow job under umask 022 (a shell default) leaves 0644 results, as `cp` would."""
    script = textwrap.dedent(
        """
        import os, sys
        os.umask(0o022)
        sys.path.insert(0, sys.argv[2])
        from obsscale.core.io import write_text
        write_text("result", sys.argv[1])
        """
    )
    src = os.path.join(os.path.dirname(__file__), os.pardir, "src")
    subprocess.run([sys.executable, "-c", script, str(tmp_path / "r.txt"), src], check=True)
    assert _mode(tmp_path / "r.txt") == 0o644
