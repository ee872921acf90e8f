"""The fit stage's one job for all experiments (obsscale.stages.fits.write_all_fits): experiments run
in forked children, and each one's files are the same bytes whatever the worker count and order."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml

from obsscale.core.errors import InputError
from obsscale.core.parallel import run_forked
from obsscale.stages.fits import write_all_fits
from obsscale.stages.outputs import EXPERIMENT_FILES

ROOT = Path(__file__).resolve().parents[1]
CONFIG = yaml.safe_load((ROOT / "config/config.yaml").read_text())
FAMILIES = ROOT / CONFIG["families"]
# Three quick experiments: two single-family FLOPs laws and the floored-sigmoid agent law.
NAMES = ("single_family_opt", "single_family_qwen15", "agentic_80_20")


def experiments(out: Path, names=NAMES) -> dict:
    result = {}
    for name in names:
        block = copy.deepcopy(CONFIG["experiments"][name])
        block["data"]["targets_csv"] = str(ROOT / block["data"]["targets_csv"])
        files = {key: str(out / f"{name}.{key}") for key in EXPERIMENT_FILES}
        result[name] = {"block": block, "scores": str(ROOT / CONFIG["scores"][block["data"]["scores"]]["path"]),
                        "targets": block["data"]["targets_csv"], **files}
    return result


def stage_config() -> dict:
    scores = {k: {**v, "path": str(ROOT / v["path"])} for k, v in CONFIG["scores"].items()}
    return {"scores": scores, "laws": CONFIG["laws"], "capability_space": CONFIG["capability_space"]}


def without_times(doc):
    if isinstance(doc, dict):
        return {k: without_times(v) for k, v in doc.items() if k not in ("frozen", "created")}
    return [without_times(v) for v in doc] if isinstance(doc, list) else doc


def contents(out: Path) -> dict[str, object]:
    """Every file written, the frozen records without their time stamps."""
    files = {}
    for path in sorted(out.iterdir()):
        if path.name.endswith(".prereg"):
            files[path.name] = without_times(json.loads(path.read_text()))
        else:
            files[path.name] = path.read_bytes()
    return files


def test_fits_do_not_depend_on_worker_count_or_order(tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir(), two.mkdir()
    write_all_fits(experiments(one), stage_config(), FAMILIES, one / "table_c1.csv", workers=1)
    write_all_fits(experiments(two, NAMES[::-1]), stage_config(), FAMILIES, two / "table_c1.csv", workers=3)
    a, b = contents(one), contents(two)
    assert len(a) == 3 * len(EXPERIMENT_FILES) + 1 and set(a) == set(b)
    different = [name for name in a if name != "table_c1.csv" and a[name] != b[name]]
    assert different == []
    # Table C.1 lists the experiments in the order given; the rows themselves are the same.
    rows_one = sorted(a["table_c1.csv"].decode().splitlines())
    assert rows_one == sorted(b["table_c1.csv"].decode().splitlines())


def test_a_failing_experiment_stops_the_stage_with_its_own_error(tmp_path):
    exps = experiments(tmp_path, NAMES[:2])
    exps["single_family_qwen15"]["block"]["targets"][0]["column"] = "no_such_column"
    with pytest.raises(InputError, match="no_such_column"):
        write_all_fits(exps, stage_config(), FAMILIES, tmp_path / "table_c1.csv", workers=2)
    assert not (tmp_path / "table_c1.csv").exists()


def _write_or_fail(path: str, fail: bool) -> None:
    if fail:
        raise ValueError(f"item {path} failed")
    Path(path).write_text("done")


def test_run_forked_starts_nothing_after_a_failure_and_raises_it(tmp_path):
    items = [(str(tmp_path / "a"), True), (str(tmp_path / "b"), False), (str(tmp_path / "c"), False)]
    with pytest.raises(ValueError, match="item .*a failed"):
        run_forked(_write_or_fail, items, workers=1)
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    run_forked(_write_or_fail, items[1:], workers=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b", "c"]
