"""A PassUntil task as config: data, prompt, checker, sampling design (r, K_max, batches), seed.

A task YAML (see config/passuntil/tasks/) looks like::

    name: date_mini
    data: {path: ../../../resources/passuntil/date_mini.jsonl}   # or {package: ...}, {lm_eval: ...}
    prompt: "Q: {question}\\nA:"          # str.format over the instance's fields
    checker: {name: exact_match, extract: "^\\\\s*(\\\\S+)"}
    stop: ["\\n"]
    r: 2                                 # r = 1 only with allow_r1: true (biased, labelled)
    K_max: 10000
    temperature: 1.0
    top_p: 1.0
    max_new_tokens: 16
    batch: {initial: 16, growth: 2, max: 1024}
    seed: 1234

Relative data paths are resolved against the YAML file's folder (the data sources: `sources.py`).
With `data: {lm_eval: name}` the prompt, target, stop sequences and answer-extraction regex come
from lm-eval's own task definition.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from obsscale.core.errors import InputError, UnknownNameError, did_you_mean
from obsscale.passuntil.checkers import Checker, get_checker
from obsscale.passuntil.sources import (  # noqa: F401 (read_jsonl, TaskError re-exported)
    OPTION_KEYS,
    SOURCE_KEYS,
    TaskError,
    load_instances,
    read_jsonl,
)

DEFAULTS = {
    "r": 2,
    "K_max": 10000,
    "temperature": 1.0,
    "top_p": 1.0,
    "max_new_tokens": 64,
    "stop": [],
    "batch": {"initial": 16, "growth": 2.0, "max": 1024},
    "seed": 0,
    "greedy": True,
    "store_text": True,
    "allow_r1": False,
}
KEYS = set(DEFAULTS) | {"name", "data", "prompt", "checker", "description"}
BATCH_KEYS = ("initial", "growth", "max")
DATA_KEYS = tuple(sorted(SOURCE_KEYS | OPTION_KEYS))


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


# field -> (test, what it must be); `K_max >= r` and the data block are checked on their own.
FIELD_RULES = {
    "name": (lambda v: isinstance(v, str) and re.fullmatch(r"[A-Za-z0-9._-]+", v) is not None,
             "a name of letters, digits, '.', '_' or '-'"),
    "description": (lambda v: isinstance(v, str), "a string"),
    "prompt": (lambda v: isinstance(v, str), "a string"),
    "checker": (lambda v: isinstance(v, str) or (isinstance(v, dict) and "name" in v),
                "a checker name or a mapping with 'name'"),
    "stop": (lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v), "a list of strings"),
    "r": (lambda v: _is_int(v) and v >= 1, "an integer >= 1"),
    "K_max": (lambda v: _is_int(v) and v >= 1, "an integer >= 1"),
    "temperature": (lambda v: _is_number(v) and v >= 0, "a number >= 0"),
    "top_p": (lambda v: _is_number(v) and 0 < v <= 1, "a number in (0, 1]"),
    "max_new_tokens": (lambda v: _is_int(v) and v >= 1, "an integer >= 1"),
    "seed": (lambda v: _is_int(v), "an integer"),
    "greedy": (lambda v: isinstance(v, bool), "true or false"),
    "store_text": (lambda v: isinstance(v, bool), "true or false"),
    "batch.initial": (lambda v: _is_int(v) and v >= 1, "an integer >= 1"),
    "batch.growth": (lambda v: _is_number(v) and v >= 1, "a number >= 1"),
    "batch.max": (lambda v: _is_int(v) and v >= 1, "an integer >= 1"),
    "data.path": (lambda v: isinstance(v, str) and v != "", "a path to a JSONL file"),
    "data.lm_eval": (lambda v: isinstance(v, str) and v != "", "an lm-eval task name"),
    "data.package": (lambda v: isinstance(v, str) and ":" in v, "'module:relative/path' of an installed package"),
    "data.limit": (lambda v: _is_int(v) and v >= 1, "an integer >= 1"),
    "data.id_field": (lambda v: isinstance(v, str) and v != "", "a field name"),
    "data.fields": (lambda v: isinstance(v, dict) and all(isinstance(x, str) for x in v.values()),
                    "a mapping of instance field: document field"),
    "allow_r1": (lambda v: isinstance(v, bool), "true or false"),
}


def round_batch(batch: dict, round_index: int) -> int:
    """Per-instance attempts in round k of a design's `batch` {initial, growth, max}: initial *
    growth^k, capped at max (geometric growth; the exponent is capped so that no late round
    overflows).  The engine draws by it and the estimators re-trace its rounds by it."""
    grown = batch["initial"] * batch["growth"] ** min(round_index, 60)
    return int(min(batch["max"], max(1, round(grown))))


@dataclass
class PassUntilTask:
    name: str
    instances: list[dict]
    prompt: str
    checker_spec: Any
    r: int = 2
    K_max: int = 10000
    temperature: float = 1.0
    top_p: float = 1.0
    max_new_tokens: int = 64
    stop: list[str] = field(default_factory=list)
    batch: dict = field(default_factory=lambda: dict(DEFAULTS["batch"]))
    seed: int = 0
    greedy: bool = True
    store_text: bool = True
    source_sha256: str | None = None  # of the task YAML (set by load_task)
    allow_r1: bool = False  # r = 1 has no usable unbiased estimator: refused unless opted in

    def __post_init__(self):
        self.checker: Checker = get_checker(self.checker_spec)
        if self.r < 1 or self.K_max < self.r:
            raise TaskError(f"task {self.name}: need 1 <= r <= K_max, got r={self.r}, K_max={self.K_max}")
        if self.r == 1 and not self.allow_r1:
            raise TaskError(
                f"task {self.name}: field 'r': r = 1 biases every per-instance estimate upward "
                "(2.6x to 9x at p in 1e-2..1e-5); use r >= 2, or set allow_r1: true to accept "
                "estimates labelled 'r = 1: biased upward' (docs/passuntil.md)")
        b = self.batch
        if b["max"] < 1 or b["initial"] < 1 or b["growth"] < 1:
            raise TaskError(f"task {self.name}: batch needs initial >= 1, growth >= 1, max >= 1, got {b}")
        ids = [inst["id"] for inst in self.instances]
        if len(set(ids)) != len(ids):
            raise TaskError(f"task {self.name}: instance ids are not unique")

    def render(self, instance: dict) -> str:
        if "prompt_text" in instance:  # rendered by the task's source (lm-eval)
            return instance["prompt_text"]
        return self.prompt.format(**instance)

    def batch_size(self, round_index: int) -> int:
        """Per-instance attempts in round k (`round_batch`)."""
        return round_batch(self.batch, round_index)

    def design(self) -> dict:
        """Everything that fixes which samples are drawn; a resumed log must agree with it."""
        return {
            "task": self.name, "r": self.r, "K_max": self.K_max, "temperature": self.temperature,
            "top_p": self.top_p, "max_new_tokens": self.max_new_tokens, "stop": list(self.stop),
            "batch": dict(self.batch), "seed": self.seed, "prompt": self.prompt,
            "instances_sha256": hashlib.sha256(
                json.dumps(self.instances, sort_keys=True, default=str).encode()).hexdigest(),
            # What decides a verdict, and the task file itself.
            "checker": self.checker.describe(), "task_file_sha256": self.source_sha256,
        }

    def instance(self, instance_id) -> dict:
        """One instance by its id (a string id also matches a numeric one)."""
        for inst in self.instances:
            if inst["id"] == instance_id or str(inst["id"]) == str(instance_id):
                return inst
        ids = [str(i["id"]) for i in self.instances]
        raise UnknownNameError(f"task {self.name}: no instance {instance_id!r}"
                               f"{did_you_mean(str(instance_id), ids)}")


def _key_lines(text: str) -> dict[str, int]:
    """1-based line of every key of the YAML's top-level mapping and of its nested mappings
    (`batch.max`), for error messages."""
    lines: dict[str, int] = {}
    try:
        node = yaml.compose(text)
    except yaml.YAMLError:
        return lines
    if not isinstance(node, yaml.MappingNode):
        return lines
    for key, value in node.value:
        lines[str(key.value)] = key.start_mark.line + 1
        if isinstance(value, yaml.MappingNode):
            for sub, _ in value.value:
                lines[f"{key.value}.{sub.value}"] = sub.start_mark.line + 1
    return lines


def read_task_yaml(path: str | Path) -> dict:
    """A task YAML, parsed and checked field by field (types, ranges, closed key sets) without
    loading its instances; errors are `TaskError`s naming the file, the line and the field."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TaskError(f"{path}: task file not found") from None
    except IsADirectoryError:
        raise TaskError(f"{path}: is a folder, not a task YAML") from None
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[: exc.start].count(b"\n") + 1
        raise TaskError(f"{path}: line {line}: not UTF-8 text") from None
    try:
        cfg = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise TaskError(f"{path}: {where}not valid YAML ({getattr(exc, 'problem', exc)})") from None
    if not isinstance(cfg, dict):
        raise TaskError(f"{path}: a task YAML is a mapping of fields (name, data, checker, ...)")
    lines = _key_lines(text)

    def fail(field: str, message: str):
        line = lines.get(field, lines.get(field.split(".")[0]))
        where = f"line {line}, " if line else ""
        return TaskError(f"{path}: {where}field '{field}': {message}")

    for block, keys, known in (("", cfg, KEYS), ("batch.", cfg.get("batch"), BATCH_KEYS),
                               ("data.", cfg.get("data"), DATA_KEYS)):
        if block and block[:-1] in cfg and not isinstance(keys, dict):
            raise fail(block[:-1], f"must be a mapping of {', '.join(known)}")
        for key in keys or {}:
            if key not in known:
                raise fail(f"{block}{key}", f"unknown field{did_you_mean(key, known)}; known: {sorted(known)}")
    for key in ("name", "data", "checker"):
        if key not in cfg:
            raise TaskError(f"{path}: field {key!r} is required")
    values = {**cfg, **{f"batch.{k}": v for k, v in (cfg.get("batch") or {}).items()},
              **{f"data.{k}": v for k, v in cfg["data"].items()}}
    for field_name, value in values.items():
        rule = FIELD_RULES.get(field_name)
        if rule is not None and not rule[0](value):
            raise fail(field_name, f"must be {rule[1]}, got {value!r}")
    if sum(k in cfg["data"] for k in SOURCE_KEYS) != 1:
        raise fail("data", "needs exactly one of 'path' (JSONL), 'package' (a file of an installed "
                           "package) or 'lm_eval' (task name)")
    r, k_max = cfg.get("r", DEFAULTS["r"]), cfg.get("K_max", DEFAULTS["K_max"])
    if k_max < r:
        raise fail("K_max", f"must be >= r ({r}), got {k_max}")
    try:
        get_checker(cfg["checker"])
    except InputError as exc:
        raise fail("checker", str(exc)) from None
    return cfg


def check_task_file(path: str | Path) -> None:
    """Everything `load_task` checks that needs no model and no lm-eval: the YAML's fields, its
    JSONL data file, and that the prompt renders every instance.  Run when the workflow is parsed."""
    cfg = read_task_yaml(path)
    if "path" in cfg["data"] or "package" in cfg["data"]:
        try:
            instances, _, _ = load_instances(cfg["data"], Path(path).parent)
        except TaskError:
            raise
        except InputError as exc:
            raise TaskError(f"{path}: {exc}") from None
        _check_prompt(Path(path), cfg.get("prompt", "{prompt}"), instances)


def _check_prompt(path: Path, prompt: str, instances: list[dict]) -> None:
    for i, inst in enumerate(instances):
        if "prompt_text" in inst:
            continue
        try:
            prompt.format(**inst)
        except KeyError as exc:
            raise TaskError(f"{path}: field 'prompt': uses field {exc} missing in instance {i} "
                            f"(id {inst.get('id')!r})") from None
        except (IndexError, ValueError) as exc:
            raise TaskError(f"{path}: field 'prompt': cannot be formatted ({exc})") from None


def load_task(path: str | Path) -> PassUntilTask:
    """Read and validate a task YAML; errors name the file, the line and the field."""
    path = Path(path)
    cfg = read_task_yaml(path)
    settings = {k: cfg.get(k, v) for k, v in DEFAULTS.items()}
    settings["batch"] = {**DEFAULTS["batch"], **(cfg.get("batch") or {})}
    checker = cfg["checker"]
    try:
        instances, from_source, _ = load_instances(cfg["data"], path.parent)
    except TaskError:
        raise
    except InputError as exc:
        raise TaskError(f"{path}: {exc}") from None
    if "stop" not in cfg and "stop" in from_source:
        settings["stop"] = from_source["stop"]
    if "extract" in from_source and (checker if isinstance(checker, str) else
                                     checker.get("name")) != "code_execution":
        checker = {"name": checker} if isinstance(checker, str) else dict(checker)
        checker.setdefault("extract", from_source["extract"])
    prompt = cfg.get("prompt", "{prompt}")
    _check_prompt(path, prompt, instances)
    try:
        task = PassUntilTask(name=cfg["name"], instances=instances, prompt=prompt,
                             checker_spec=checker, **settings)
    except (KeyError, TypeError, ValueError) as exc:
        raise TaskError(f"{path}: {exc}") from None
    task.source_sha256 = hashlib.sha256(path.read_bytes()).hexdigest()
    return task
