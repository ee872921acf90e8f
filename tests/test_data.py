"""Score-table validation: each problem is one error naming file, line and column."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from obsscale.capability import scores as D

ROOT = Path(__file__).resolve().parents[1]
BASE = ROOT / "resources/obsscaling/base_llm_benchmark_eval.csv"
FAMILIES = D.load_families(ROOT / "resources/obsscaling/families.yaml")


def broken_copy(tmp_path: Path, edit) -> Path:
    df = pd.read_csv(BASE, dtype=str)
    df = edit(df)
    out = tmp_path / "scores.csv"
    df.to_csv(out, index=False)
    return out


def test_shipped_base_table_is_valid_and_default_set_is_the_papers():
    table = D.read_score_table(BASE, D.BASE_METRICS, FAMILIES)
    assert len(table) == 148
    base = D.select_models(table, FAMILIES)
    assert len(base) == 77
    assert base[D.FAMILY].nunique() == 21
    assert int(base[list(D.BASE_METRICS)].isna().to_numpy().sum()) == 6
    with_prereg = D.select_models(table, FAMILIES, include_preregistered=True)
    assert len(with_prereg) == 97
    assert D.is_preregistered(with_prereg, FAMILIES).sum() == 20
    with_misc = D.select_models(table, FAMILIES, include_misc_families=True)
    assert len(with_misc) == 77 + 51


def test_instruct_table_set():
    table = D.read_score_table(ROOT / "resources/obsscaling/instruct_llm_benchmark_eval.csv",
                               D.INSTRUCT_METRICS, FAMILIES)
    assert len(D.select_models(table, FAMILIES, family_list="eval_instruct")) == 27


@pytest.mark.parametrize(
    "edit, line, column, words",
    [
        (lambda df: df.drop(columns=["GSM8K"]), 1, "GSM8K", "required column"),
        (lambda df: df.assign(**{"MMLU": df["MMLU"].where(df.index != 4, "0.4x")}), 6, "MMLU", "not a number"),
        (lambda df: df.assign(**{"ARC-C": df["ARC-C"].where(df.index != 10, "1.7")}), 12, "ARC-C", "above"),
        (lambda df: df.assign(**{"FLOPs (1E21)": df["FLOPs (1E21)"].where(df.index != 3, "-5")}), 5,
         "FLOPs (1E21)", "below"),
        (lambda df: pd.concat([df, df.iloc[[2]]], ignore_index=True), 150, "Model", "duplicate model"),
        (lambda df: df.assign(**{"Model Family": df["Model Family"].where(df.index != 7, "Lama-2")}), 9,
         "Model Family", "unknown family 'Lama-2'"),
        (lambda df: df.assign(**{"Model": df["Model"].where(df.index != 0, "")}), 2, "Model", "empty"),
    ],
    ids=["missing-column", "not-numeric", "out-of-range", "negative-flops", "duplicate", "unknown-family",
         "empty-name"],
)
def test_bad_tables_get_one_located_error(tmp_path, edit, line, column, words):
    path = broken_copy(tmp_path, edit)
    with pytest.raises(D.ScoreTableError) as err:
        D.read_score_table(path, D.BASE_METRICS, FAMILIES)
    msg = str(err.value)
    assert str(path) in msg
    assert f"line {line}" in msg
    assert f"column '{column}'" in msg
    assert words in msg
    assert err.value.line == line and err.value.column == column


def test_unknown_family_suggests_the_closest(tmp_path):
    path = broken_copy(tmp_path, lambda df: df.assign(**{"Model Family": "Llama-2x"}))
    with pytest.raises(D.ScoreTableError, match="did you mean 'Llama-2'"):
        D.read_score_table(path, D.BASE_METRICS, FAMILIES)


def test_missing_file_and_families_file_errors(tmp_path):
    with pytest.raises(D.ScoreTableError, match="file not found"):
        D.read_score_table(tmp_path / "nope.csv", D.BASE_METRICS, FAMILIES)
    bad = tmp_path / "families.yaml"
    bad.write_text("eval_base_families: [A]\nsurprise: 1\n")
    with pytest.raises(D.ScoreTableError, match="unknown keys \\['surprise'\\]"):
        D.load_families(bad)
