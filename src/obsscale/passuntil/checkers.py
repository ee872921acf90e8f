"""Whether a sample passes: checkers registered by name, so a task config names its checker.

- `exact_match`: the extracted answer equals the instance's answer (or one of its answers) after
  normalisation (whitespace, case, trailing punctuation).
- `regex`: the extracted answer matches a pattern (from the checker options or the instance).
- `code_execution`: the instance's prompt + the completion + the instance's tests run in the
  sandbox; pass = the program exits 0 within the limits.
"""

from __future__ import annotations

import re
import string
from typing import Any

from obsscale.core.errors import InputError
from obsscale.core.registry import Registry
from obsscale.passuntil.sandbox import SandboxLimits, run_python

CHECKERS: Registry[type] = Registry("checker")
register = CHECKERS.register


def get_checker(spec: str | dict[str, Any]) -> "Checker":
    """Build a checker from its name or {name: ..., **options}; unknown names get suggestions."""
    if isinstance(spec, str):
        name, options = spec, {}
    else:
        options = dict(spec)
        name = options.pop("name", None)
    cls = CHECKERS.get(name)
    try:
        return cls(**options)
    except TypeError as exc:
        raise InputError(f"checker {name!r}: bad options {sorted(options)}: {exc}") from None


def extract_answer(completion: str, pattern: str | None) -> str:
    """The answer part of a completion: the first match of `pattern` (first non-empty group, as
    lm-eval's regex filter takes it), or the whole completion when there is no pattern."""
    if not pattern:
        return completion
    found = re.findall(pattern, completion)
    if not found:
        return ""
    first = found[0]
    if isinstance(first, tuple):
        first = next((g for g in first if g), "")
    return first


def normalise(text: str, ignore_case: bool = True, strip_punctuation: bool = True) -> str:
    text = " ".join(text.split())
    if ignore_case:
        text = text.lower()
    if strip_punctuation:
        text = text.strip(string.punctuation + " ")
    return text


class Checker:
    name = "checker"

    def __call__(self, instance: dict, completion: str) -> bool:  # pragma: no cover - interface
        raise NotImplementedError


@register("exact_match")
class ExactMatch(Checker):
    def __init__(self, extract: str | None = None, answer_field: str = "answer",
                 ignore_case: bool = True, strip_punctuation: bool = True):
        self.extract = extract
        self.answer_field = answer_field
        self.ignore_case = ignore_case
        self.strip_punctuation = strip_punctuation

    def __call__(self, instance: dict, completion: str) -> bool:
        answers = instance[self.answer_field]
        answers = answers if isinstance(answers, list) else [answers]
        got = normalise(extract_answer(completion, self.extract), self.ignore_case,
                        self.strip_punctuation)
        return got != "" and any(
            got == normalise(str(a), self.ignore_case, self.strip_punctuation) for a in answers
        )


@register("regex")
class RegexMatch(Checker):
    def __init__(self, pattern: str | None = None, pattern_field: str = "pattern",
                 extract: str | None = None, fullmatch: bool = False, ignore_case: bool = False):
        self.pattern = pattern
        self.pattern_field = pattern_field
        self.extract = extract
        self.fullmatch = fullmatch
        self.flags = re.IGNORECASE if ignore_case else 0

    def __call__(self, instance: dict, completion: str) -> bool:
        pattern = self.pattern if self.pattern is not None else instance[self.pattern_field]
        text = extract_answer(completion, self.extract).strip()
        match = re.fullmatch if self.fullmatch else re.search
        return match(pattern, text, self.flags) is not None


@register("code_execution")
class CodeExecution(Checker):
    """HumanEval-style: prompt + completion + the instance's `test` + `check(entry_point)`."""

    def __init__(self, cpu_seconds: int = 5, wall_seconds: float = 10.0,
                 memory_mb: int = 1024, max_processes: int = 16, prompt_field: str = "prompt",
                 test_field: str = "test", entry_point_field: str = "entry_point"):
        self.limits = SandboxLimits(cpu_seconds=cpu_seconds, wall_seconds=wall_seconds,
                                    memory_bytes=memory_mb << 20, max_processes=max_processes)
        self.prompt_field = prompt_field
        self.test_field = test_field
        self.entry_point_field = entry_point_field

    def program(self, instance: dict, completion: str) -> str:
        return (f"{instance[self.prompt_field]}{completion}\n\n\n{instance[self.test_field]}\n\n"
                f"check({instance[self.entry_point_field]})\n")

    def __call__(self, instance: dict, completion: str) -> bool:
        return run_python(self.program(instance, completion), self.limits).passed
