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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from obsscale.core.errors import InputError, UnknownNameError, did_you_mean
from obsscale.passuntil.checkers import Checker, get_checker
from obsscale.passuntil.sources import load_instances, read_jsonl  # noqa: F401 (re-exported)

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
            raise ValueError(f"task {self.name}: need 1 <= r <= K_max, got r={self.r}, K_max={self.K_max}")
        if self.r == 1 and not self.allow_r1:
            raise ValueError(
                f"task {self.name}: field 'r': r = 1 biases every per-instance estimate upward "
                "(2.6x to 9x at p in 1e-2..1e-5); use r >= 2, or set allow_r1: true to accept "
                "estimates labelled 'r = 1: biased upward' (docs/passuntil.md)")
        ids = [inst["id"] for inst in self.instances]
        if len(set(ids)) != len(ids):
            raise ValueError(f"task {self.name}: instance ids are not unique")

    def render(self, instance: dict) -> str:
        if "prompt_text" in instance:  # rendered by the task's source (lm-eval)
            return instance["prompt_text"]
        return self.prompt.format(**instance)

    def batch_size(self, round_index: int) -> int:
        """Per-instance attempts in round k: initial * growth^k, capped (geometric growth)."""
        b = self.batch
        return int(min(b["max"], max(1, round(b["initial"] * b["growth"] ** round_index))))

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


def load_task(path: str | Path) -> PassUntilTask:
    """Read and validate a task YAML; errors name the file and the field."""
    path = Path(path)
    with open(path) as f:
        cfg = yaml.safe_load(f) or {}
    unknown = set(cfg) - KEYS
    if unknown:
        raise ValueError(f"{path}: unknown field(s) {sorted(unknown)}; known: {sorted(KEYS)}")
    for key in ("name", "data", "checker"):
        if key not in cfg:
            raise ValueError(f"{path}: field {key!r} is required")
    settings = {k: cfg.get(k, v) for k, v in DEFAULTS.items()}
    settings["batch"] = {**DEFAULTS["batch"], **(cfg.get("batch") or {})}
    checker = cfg["checker"]
    try:
        instances, from_source, _ = load_instances(cfg["data"], path.parent)
    except InputError as exc:
        raise InputError(f"{path}: {exc}") from None
    if "stop" not in cfg and "stop" in from_source:
        settings["stop"] = from_source["stop"]
    if "extract" in from_source and (checker if isinstance(checker, str) else
                                     checker.get("name")) != "code_execution":
        checker = {"name": checker} if isinstance(checker, str) else dict(checker)
        checker.setdefault("extract", from_source["extract"])
    prompt = cfg.get("prompt", "{prompt}")
    for i, inst in enumerate(instances):
        if "prompt_text" in inst:
            continue
        try:
            prompt.format(**inst)
        except KeyError as exc:
            raise ValueError(f"{path}: prompt uses field {exc} missing in instance {i} "
                             f"(id {inst.get('id')!r})") from None
    try:
        task = PassUntilTask(name=cfg["name"], instances=instances, prompt=prompt,
                             checker_spec=checker, **settings)
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{path}: {exc}") from None
    task.source_sha256 = hashlib.sha256(path.read_bytes()).hexdigest()
    return task
