"""Score tables: loading, validation and the paper's model sets.

A score table is a CSV with one row per model: `Model`, `Model Family`, compute metadata
(`Model Size (B)`, `Pretraining Data Size (T)`, `FLOPs (1E21)`) and benchmark columns in [0, 1].
Every problem is reported as one `ScoreTableError` naming the file, the line and the column, before
any result is written.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import yaml

from obsscale.core.errors import ConfigError, InputError, did_you_mean  # noqa: F401

MODEL = "Model"
FAMILY = "Model Family"
SIZE = "Model Size (B)"
DATA = "Pretraining Data Size (T)"
FLOPS = "FLOPs (1E21)"
METADATA_COLUMNS = (MODEL, FAMILY, SIZE, DATA, FLOPS)
COMPUTE_COLUMNS = (SIZE, DATA, FLOPS)

# The paper's metric lists (spec §3).
BASE_METRICS = ("MMLU", "ARC-C", "HellaSwag", "Winograd", "TruthfulQA", "GSM8K", "XWinograd", "HumanEval")
BASE_METRICS_NONGSM = tuple(m for m in BASE_METRICS if m != "GSM8K")
INSTRUCT_METRICS = ("MMLU", "ARC-C", "HellaSwag", "Winogrande", "TruthfulQA", "GSM8K", "HumanEval")


class ScoreTableError(InputError):
    """A problem in an input table, located by file, line and column."""

    def __init__(self, path: str | os.PathLike, message: str, *, line: int | None = None,
                 column: str | None = None):
        self.path = str(path)
        self.line = line
        self.column = column
        where = self.path
        if line is not None:
            where += f", line {line}"
        if column is not None:
            where += f", column '{column}'"
        super().__init__(f"{where}: {message}")


class RowLines(tuple):
    """The physical CSV line of each row, kept in a table's `attrs`: immutable, so a deep copy is
    the object itself.  pandas deep-copies `attrs` in every operation on a frame, and a list of one
    int per row made that cost more than the operations themselves."""

    def __deepcopy__(self, memo) -> "RowLines":
        return self


def csv_line(row_position: int, df: pd.DataFrame | None = None) -> int:
    """The 1-based physical line of a data row in its CSV: taken from the table as read by
    `read_csv_strict` (blank lines and quoted newlines counted), else row + 2 (line 1 the header)."""
    lines = None if df is None else df.attrs.get("lines")
    if lines is not None and row_position < len(lines):
        return int(lines[row_position])
    return row_position + 2


# pandas' default missing-value strings: a cell with one of these is missing, as with pd.read_csv.
NA_STRINGS = frozenset({"", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND",
                        "1.#QNAN", "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"})


def _decode(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ScoreTableError(path, "file not found") from None
    except IsADirectoryError:
        raise ScoreTableError(path, "is a folder, not a CSV file") from None
    except OSError as exc:
        raise ScoreTableError(path, f"cannot be read ({exc.strerror})") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ScoreTableError(path, f"not UTF-8 text (byte 0x{raw[exc.start]:02x}); save the file as UTF-8",
                              line=line) from None


def read_csv_strict(path: str | os.PathLike) -> pd.DataFrame:
    """A CSV as strings (missing cells NaN), read strictly: UTF-8, a header of unique non-empty
    names, every row exactly as long as the header.  Blank lines are skipped; the physical line of
    each row (quoted newlines counted) is kept in `df.attrs["lines"]` for error messages."""
    path = Path(path)
    text = _decode(path)
    reader = csv.reader(io.StringIO(text, newline=""))
    header, header_line, rows, lines = None, 0, [], []
    end = 0
    try:
        for record in reader:
            start, end = end + 1, reader.line_num
            if not record or (len(record) == 1 and not record[0].strip() and header is None):
                continue
            if header is None:
                header, header_line = [c.strip() for c in record], start
                _check_header(path, header, header_line)
                continue
            if len(record) != len(header):
                if len(record) == 1 and not record[0].strip():
                    continue  # a line of spaces
                word = "fewer" if len(record) < len(header) else "more"
                raise ScoreTableError(path, f"row has {len(record)} fields, {word} than the header's "
                                      f"{len(header)} (line {header_line})", line=start)
            rows.append([None if c in NA_STRINGS else c for c in record])
            lines.append(start)
    except csv.Error as exc:
        raise ScoreTableError(path, f"cannot be parsed as CSV: {exc}", line=end + 1) from None
    if header is None:
        raise ScoreTableError(path, "file is empty")
    df = pd.DataFrame(rows, columns=header, dtype=object)
    df.attrs.update(lines=RowLines(lines), header_line=header_line)
    return df


def _check_header(path: Path, header: list[str], line: int) -> None:
    seen: set[str] = set()
    for i, name in enumerate(header):
        if not name:
            raise ScoreTableError(path, f"header field {i + 1} has no name", line=line)
        if name in seen:
            raise ScoreTableError(path, "duplicated column name in the header", line=line, column=name)
        seen.add(name)


@dataclass(frozen=True)
class Families:
    """Family lists, preregistered models and benchmark floors (resources/obsscaling/families.yaml)."""

    eval_base_families: tuple[str, ...] = ()
    added_later: tuple[str, ...] = ()
    no_flops_families: tuple[str, ...] = ()
    misc_base_families: tuple[str, ...] = ()
    code_families: tuple[str, ...] = ()
    preregistered_models: tuple[str, ...] = ()
    eval_instruct_families: tuple[str, ...] = ()
    benchmark_floors: dict[str, float] = field(default_factory=dict)

    @property
    def known_families(self) -> tuple[str, ...]:
        seen: dict[str, None] = {}
        for fam in (*self.eval_base_families, *self.misc_base_families, *self.code_families,
                    *self.eval_instruct_families):
            seen.setdefault(fam, None)
        return tuple(seen)

    @property
    def order(self) -> tuple[str, ...]:
        """Canonical legend order: evaluated base, instruct, then misc families."""
        return self.known_families

    def family_list(self, name: str) -> tuple[str, ...]:
        lists = {
            "eval_base": self.eval_base_families,
            "eval_instruct": self.eval_instruct_families,
            "all": self.known_families,
        }
        if name not in lists:
            raise ConfigError(f"unknown family list '{name}'; expected one of {sorted(lists)}")
        return lists[name]


def _read_families(path: Path, seen: tuple[Path, ...] = ()) -> dict:
    """The raw mapping of a families file with its `extends:` chain resolved (base first)."""
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise ScoreTableError(path, "families file not found") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ScoreTableError(path, f"not valid YAML ({getattr(exc, 'problem', None) or exc})",
                              line=mark.line + 1 if mark else None) from None
    if not isinstance(raw, dict):
        raise ScoreTableError(path, "must be a mapping of family lists")
    known = {f.name for f in Families.__dataclass_fields__.values()}
    unknown = sorted(set(raw) - known - {"extends"})
    if unknown:
        raise ScoreTableError(path, f"unknown keys {unknown}; expected some of {sorted(known | {'extends'})}")
    for key, value in raw.items():
        if key == "benchmark_floors":
            if value is not None and not isinstance(value, dict):
                raise ScoreTableError(path, "'benchmark_floors' must be a mapping of metric: floor")
            try:
                raw[key] = {str(k): float(v) for k, v in (value or {}).items()}
            except (TypeError, ValueError):
                raise ScoreTableError(path, "'benchmark_floors' values must be numbers") from None
        elif key != "extends":
            if value is not None and not isinstance(value, list):
                raise ScoreTableError(path, f"'{key}' must be a list")
            raw[key] = [str(v) for v in (value or [])]
    base = raw.pop("extends", None)
    if base is None:
        return raw
    base_path = (path.parent / str(base)).resolve()
    if base_path in seen:
        raise ScoreTableError(path, f"'extends' forms a cycle through {base_path}")
    merged = _read_families(base_path, (*seen, path.resolve()))
    for key, value in raw.items():
        if key == "benchmark_floors":
            merged[key] = {**merged.get(key, {}), **value}
        else:
            merged[key] = list(dict.fromkeys([*merged.get(key, []), *value]))
    return merged


def load_families(path: str | os.PathLike) -> Families:
    """Read a families file.  A file with `extends: <path>` (relative to the file) adds its families,
    preregistered models and benchmark floors to those of that file (the shipped one, typically)
    instead of replacing them: its lists are appended, its floors override."""
    raw = _read_families(Path(path))
    return Families(**{k: (v if k == "benchmark_floors" else tuple(v)) for k, v in raw.items()})


def _numeric(path, df: pd.DataFrame, column: str, lo: float | None, hi: float | None,
             allow_missing: bool = True) -> pd.Series:
    raw = df[column]
    values = pd.to_numeric(raw, errors="coerce")
    bad = values.isna() & raw.notna() & (raw.astype(str).str.strip() != "")
    if bad.any():
        pos = int(np.flatnonzero(bad.to_numpy())[0])
        raise ScoreTableError(path, f"'{raw.iloc[pos]}' is not a number", line=csv_line(pos, df), column=column)
    finite = values.dropna()
    if not np.isfinite(finite.to_numpy(dtype=float)).all():
        pos = int(np.flatnonzero(~np.isfinite(values.to_numpy(dtype=float)) & values.notna().to_numpy())[0])
        raise ScoreTableError(path, "value is not finite", line=csv_line(pos, df), column=column)
    for bound, op, word in ((lo, np.less, "below"), (hi, np.greater, "above")):
        if bound is None:
            continue
        out = op(values.to_numpy(dtype=float), bound) & values.notna().to_numpy()
        if out.any():
            pos = int(np.flatnonzero(out)[0])
            raise ScoreTableError(
                path, f"{values.iloc[pos]} is {word} the allowed range [{lo}, {hi}]",
                line=csv_line(pos, df), column=column,
            )
    if not allow_missing and values.isna().any():
        pos = int(np.flatnonzero(values.isna().to_numpy())[0])
        raise ScoreTableError(path, "value is missing", line=csv_line(pos, df), column=column)
    return values.astype(float)


def read_score_table(path: str | os.PathLike, metrics: Sequence[str], families: Families | None = None,
                     metric_range: tuple[float, float] = (0.0, 1.0)) -> pd.DataFrame:
    """Read and validate a score table.

    Checks: the file exists and parses; `Model`, `Model Family` and every metric column exist;
    model names are present and unique; compute metadata are non-negative numbers (missing allowed:
    such models are test-only in compute-based splits); metrics are numbers in `metric_range`
    (missing allowed, imputed later); every family is known to `families` (when given).
    """
    path = Path(path)
    df = read_csv_strict(path)
    lines = df.attrs["lines"]
    header_line = df.attrs["header_line"]
    required = [MODEL, FAMILY, *metrics]
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise ScoreTableError(path, f"required column(s) missing: {missing}; the header has {list(df.columns)}",
                              line=header_line, column=missing[0])
    if df.empty:
        raise ScoreTableError(path, "the table has no rows")
    _check_names(path, df, lines)
    if families is not None:
        _check_families(path, df, families, lines)
    _check_numbers(path, df, metrics, metric_range, header_line)
    df.attrs.update(lines=lines, header_line=header_line)
    return df


def _check_names(path: Path, df: pd.DataFrame, lines) -> None:
    """Model and family names present (stripped in place), model names unique."""
    for col in (MODEL, FAMILY):
        blank = df[col].isna() | (df[col].astype(str).str.strip() == "")
        if blank.any():
            raise ScoreTableError(path, "value is empty", line=lines[int(np.flatnonzero(blank)[0])], column=col)
        df[col] = df[col].str.strip()
    dup = df[MODEL].duplicated(keep="first")
    if dup.any():
        pos = int(np.flatnonzero(dup.to_numpy())[0])
        first = int(np.flatnonzero((df[MODEL] == df[MODEL].iloc[pos]).to_numpy())[0])
        raise ScoreTableError(
            path, f"duplicate model '{df[MODEL].iloc[pos]}' (first on line {lines[first]})",
            line=lines[pos], column=MODEL,
        )


def _check_families(path: Path, df: pd.DataFrame, families: Families, lines) -> None:
    """Every model's family is known to `families`."""
    known = set(families.known_families)
    unknown = ~df[FAMILY].isin(known)
    if unknown.any():
        pos = int(np.flatnonzero(unknown.to_numpy())[0])
        raise ScoreTableError(
            path,
            f"unknown family '{df[FAMILY].iloc[pos]}' (model '{df[MODEL].iloc[pos]}'); "
            f"add it to the families file or correct the name{did_you_mean(df[FAMILY].iloc[pos], known)}",
            line=lines[pos], column=FAMILY,
        )


def _check_numbers(path: Path, df: pd.DataFrame, metrics: Sequence[str], metric_range: tuple[float, float],
                   header_line: int) -> None:
    """Compute metadata and metrics converted to numbers in range (in place); every metric observed somewhere."""
    for col in COMPUTE_COLUMNS:
        if col in df.columns:
            df[col] = _numeric(path, df, col, 0.0, None)
    for col in metrics:
        df[col] = _numeric(path, df, col, *metric_range)
    if df[list(metrics)].isna().all(axis=None):
        raise ScoreTableError(path, "every metric value is missing")
    for col in metrics:
        if df[col].isna().all():
            raise ScoreTableError(path, "the column has no observed value (every row is missing); "
                                  "imputation needs at least one", line=header_line, column=col)


def select_models(df: pd.DataFrame, families: Families, *, family_list: str = "eval_base",
                  include_misc_families: bool = False, include_preregistered: bool = False) -> pd.DataFrame:
    """The paper's model sets (spec §1.2).

    `eval_base` without preregistered models is the default 77-model, 21-family base set;
    `include_preregistered` adds the 20 models released after the paper's first version;
    `include_misc_families` adds the families whose metadata were collected but not analysed.
    """
    allowed = set(families.family_list(family_list))
    if include_misc_families:
        allowed |= set(families.misc_base_families)
    keep = df[FAMILY].isin(allowed)
    if not include_preregistered:
        keep &= ~df[MODEL].isin(set(families.preregistered_models))
    return df.loc[keep].reset_index(drop=True)


def is_preregistered(df: pd.DataFrame, families: Families) -> pd.Series:
    return df[MODEL].isin(set(families.preregistered_models))


def log10_flops(flops_1e21):
    """log10 of training compute in units of 1e21 FLOPs (the paper adds 1e-9 to guard log 0).

    Works on floats, arrays and Series (keeping the index); missing FLOPs stay missing."""
    return np.log10(flops_1e21 + 1e-9)


def validate_score_table(path: str | os.PathLike, metrics: Sequence[str] | None = None,
                         families_yaml: str | os.PathLike | None = None) -> str:
    """Run the score-table checks of `read_score_table` (metrics: the given ones, else every column
    besides the metadata) and return a one-paragraph summary; the first problem raises
    `ScoreTableError` naming file, line and column."""
    if metrics is None:
        try:
            header = pd.read_csv(path, nrows=0).columns
        except FileNotFoundError:
            raise ScoreTableError(path, "file not found") from None
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
            raise ScoreTableError(path, f"cannot be parsed as CSV: {exc}") from None
        metrics = [c for c in header if c not in METADATA_COLUMNS]
        if not metrics:
            raise ScoreTableError(path, f"no metric columns besides {list(METADATA_COLUMNS)}", line=1)
    families = load_families(families_yaml) if families_yaml else None
    table = read_score_table(path, metrics, families)
    empty = int(table[list(metrics)].isna().sum().sum())
    no_flops = int(table[FLOPS].isna().sum()) if FLOPS in table else len(table)
    return (f"{path}: OK — {len(table)} models, {table[FAMILY].nunique()} families, {len(metrics)} metrics "
            f"({', '.join(metrics)}); {empty} empty metric cell(s) (imputed), {no_flops} model(s) without FLOPs")
