"""The evaluation stage's inputs: the model sheet (`config/models.tsv`) and the task suites
(`config/suites.yaml`), validated by schema with errors naming the file, row and field."""

from __future__ import annotations

import csv
import logging
import math
import os
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from obsscale.core.errors import InputError

log = logging.getLogger(__name__)


SHEET_DEFAULTS: dict[str, Any] = {
    "name": "",
    "revision": "",
    "params_b": None,
    "tokens_t": None,
    "flops_1e21": None,
    "compute_source": "",
    "type": "base",
    "backend": "hf",
    "dtype": "auto",
    "batch_size": "1",
    "gpus": 0,
    "gpu_model": "",
    "threads": None,
    "mem_gb": None,
    "runtime_min": None,
    "suites": "",
    "model_args": "",
}
NUMERIC_FIELDS = ("params_b", "tokens_t", "flops_1e21", "mem_gb", "runtime_min")
INTEGER_FIELDS = ("gpus", "threads")


class EvaluationConfigError(InputError):
    """A model sheet or suite file is malformed: the message names the file, row and field."""


# --------------------------------------------------------------------------------------------
# Model sheet


def model_slug(name: str) -> str:
    """A file-name-safe key of a model (hub ids contain '/'); used in result paths."""
    slug = name.strip().replace("/", "__")
    return "".join(c if c.isalnum() or c in "._-" else "-" for c in slug)


def _load_schema(path: str | os.PathLike) -> dict:
    return yaml.safe_load(Path(path).read_text())


def _coerce(value: str, field: str, file: str, row: int) -> Any:
    """Cells of a TSV are strings; turn numeric fields into numbers, empty cells into None."""
    value = value.strip()
    if value == "" or value.upper() in ("NA", "NAN"):
        return None
    if field in NUMERIC_FIELDS:
        try:
            return float(value)
        except ValueError:
            raise EvaluationConfigError(
                f"{file}: row {row}, field '{field}': '{value}' is not a number"
            ) from None
    if field in INTEGER_FIELDS:
        try:
            return int(value)
        except ValueError:
            raise EvaluationConfigError(
                f"{file}: row {row}, field '{field}': '{value}' is not an integer"
            ) from None
    return value


def _schema_error(file: str, where: str, err) -> EvaluationConfigError:
    field = ".".join(str(p) for p in err.absolute_path) or "(row)"
    if err.validator == "required":
        return EvaluationConfigError(f"{file}: {where}: {err.message}")
    if err.validator == "additionalProperties":
        return EvaluationConfigError(f"{file}: {where}: {err.message}")
    return EvaluationConfigError(f"{file}: {where}, field '{field}': {err.message}")


def load_model_sheet(path: str | os.PathLike, schema_path: str | os.PathLike) -> pd.DataFrame:
    """Read and validate the model sheet; fill defaults, `Model` names, slugs and 6·N·D FLOPs.

    Rows are numbered by their line in the file (the header is row 1 unless comments precede it).
    """
    import jsonschema

    file = str(path)
    schema = _load_schema(schema_path)
    validator = jsonschema.Draft202012Validator(schema)
    with open(path, newline="") as f:
        # Rows are named by their line in the file (comment and blank lines count), as an editor shows.
        numbered = [
            (n, line) for n, line in enumerate(f, start=1) if line.strip() and not line.lstrip().startswith("#")
        ]
    if not numbered:
        raise EvaluationConfigError(f"{file}: the model sheet is empty (no header row)")
    header_line, header_text = numbered[0]
    header = [h.strip() for h in next(csv.reader([header_text], delimiter="\t"))]
    known = set(schema["properties"])
    for h in header:
        if h not in known:
            raise EvaluationConfigError(
                f"{file}: row {header_line}: unknown column '{h}' (known columns: {', '.join(sorted(known))})"
            )
    rows = []
    for i, text in numbered[1:]:
        cells = next(csv.reader([text.rstrip("\r\n")], delimiter="\t"))
        if len(cells) != len(header):
            raise EvaluationConfigError(
                f"{file}: row {i}: {len(cells)} tab-separated cells, the header has {len(header)}"
            )
        record = {h: _coerce(c, h, file, i) for h, c in zip(header, cells)}
        record = {k: v for k, v in record.items() if v is not None}
        errors = sorted(validator.iter_errors(record), key=lambda e: list(e.absolute_path))
        if errors:
            raise _schema_error(file, f"row {i}", errors[0])
        full = {**SHEET_DEFAULTS, **record}
        full["name"] = full["name"] or full["model"]
        full["slug"] = model_slug(full["name"])
        if full["flops_1e21"] is None and full["params_b"] is not None and full["tokens_t"] is not None:
            # C ≈ 6·N·D; with N in billions and D in trillions the product is in units of 1e21.
            full["flops_1e21"] = float(f"{6.0 * full['params_b'] * full['tokens_t']:.12g}")
        full["row"] = i
        rows.append(full)
    if not rows:
        raise EvaluationConfigError(f"{file}: the model sheet lists no models")
    seen: dict[str, int] = {}
    for r in rows:
        if r["slug"] in seen:
            raise EvaluationConfigError(
                f"{file}: row {r['row']}, field 'name': '{r['name']}' repeats row {seen[r['slug']]}"
                " (give each model a distinct name)"
            )
        seen[r["slug"]] = r["row"]
    return pd.DataFrame(rows).set_index("slug", drop=False)


def check_families(sheet: pd.DataFrame, families_path: str | os.PathLike, file: str = "model sheet") -> None:
    """Every model's family must be one the analyses know (families YAML), else its row is named."""
    from obsscale.capability.scores import load_families

    known = set(load_families(families_path).known_families)
    for _, r in sheet.iterrows():
        if r["family"] not in known:
            raise EvaluationConfigError(
                f"{file}: row {r['row']}, field 'family': '{r['family']}' is not a family of "
                f"{families_path}"
            )


# --------------------------------------------------------------------------------------------
# Suites


def load_suites(path: str | os.PathLike, schema_path: str | os.PathLike) -> dict[str, dict]:
    """Read and validate a suites file: `suites: {NAME: {benchmarks: {COLUMN: {task, ...}}}}`."""
    import jsonschema

    file = str(path)
    try:
        data = yaml.safe_load(Path(path).read_text())
    except yaml.YAMLError as e:
        raise EvaluationConfigError(f"{file}: not valid YAML: {e}") from None
    if not isinstance(data, dict) or not isinstance(data.get("suites"), dict):
        raise EvaluationConfigError(f"{file}: top level must be a mapping with a 'suites:' key")
    schema = _load_schema(schema_path)
    validator = jsonschema.Draft202012Validator(schema)
    suites = {}
    for name, suite in data["suites"].items():
        errors = sorted(validator.iter_errors(suite), key=lambda e: list(e.absolute_path))
        if errors:
            err = errors[0]
            parts = [str(p) for p in err.absolute_path]
            if len(parts) >= 2 and parts[0] == "benchmarks":
                where = f"suite '{name}', benchmark '{parts[1]}'"
                field = ".".join(parts[2:])
            else:
                where = f"suite '{name}'"
                field = ".".join(parts)
            if err.validator in ("required", "additionalProperties") or not field:
                raise EvaluationConfigError(f"{file}: {where}: {err.message}")
            raise EvaluationConfigError(f"{file}: {where}, field '{field}': {err.message}")
        suites[name] = suite
    return suites


def runnable_benchmarks(suite: dict, allow_code_execution: bool) -> dict[str, dict]:
    """The suite's benchmarks that will run: code-execution ones only with the explicit opt-in."""
    out = {}
    for column, bench in suite["benchmarks"].items():
        if bench.get("unsafe_code", False) and not allow_code_execution:
            log.warning(
                "skipping %s (%s): it executes model-generated code; set "
                "evaluation.allow_code_execution: true to run it",
                column,
                bench["task"],
            )
            continue
        out[column] = bench
    return out


def model_suites(row: dict, default_suites: list[str]) -> list[str]:
    """Suites to run for one model: the sheet's `suites` cell (comma-separated) or the default."""
    cell = str(row.get("suites") or "").strip()
    return [s.strip() for s in cell.split(",") if s.strip()] if cell else list(default_suites)


def _is_nan(v: Any) -> bool:
    return isinstance(v, float) and math.isnan(v)
