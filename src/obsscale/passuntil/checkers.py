"""Whether a sample passes: checkers registered by name, so a task config names its checker.

- `exact_match`: the extracted answer equals the instance's answer (or one of its answers) after
  normalisation (whitespace, case, trailing punctuation).
- `regex`: the extracted answer matches a pattern (from the checker options or the instance).
- `code_execution`: the instance's prompt + the completion + the instance's tests run in the
  sandbox; pass = the tests ran to their end without raising, as reported on the harness's own
  channel (never the exit status).
"""

from __future__ import annotations

import logging
import re
import string
import time
from typing import Any

from obsscale.core.errors import InputError
from obsscale.core.registry import Registry
from obsscale.passuntil.sandbox import (
    DEFAULT_MODE,
    SandboxError,
    SandboxLimits,
    SandboxResult,
    check_mode,
    isolation,
    run_test,
)

log = logging.getLogger(__name__)

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

    def prepare(self, sandbox: str | None = None) -> dict | None:
        """Called once before sampling; checkers that run code check their sandbox here."""
        return None

    def describe(self) -> dict:
        """Everything that decides a verdict (part of a sample log's identity)."""
        return {"name": self.name, **vars(self)}

    def __call__(self, instance: dict, completion: str) -> bool:  # pragma: no cover - interface
        raise NotImplementedError


@register("exact_match")
class ExactMatch(Checker):
    name = "exact_match"

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
    name = "regex"

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
    """HumanEval semantics in the sandbox: a sample passes only when `check(entry_point)` of the
    instance's tests ran to its end without raising (see `sandbox.run_test`).  Without an entry
    point (MBPP style) the tests run after the solution and must run to their end.  The test field
    may hold a list of statements (MBPP's `test_list`); `prompt_field: null` leaves the prompt out
    of the program (a few-shot prompt that is not code)."""

    name = "code_execution"

    def __init__(self, cpu_seconds: int = 5, wall_seconds: float = 10.0,
                 memory_mb: int = 1024, max_processes: int = 16,
                 prompt_field: str | None = "prompt", test_field: str = "test",
                 entry_point_field: str | None = "entry_point", test_setup_field: str | None = None,
                 sandbox: str = DEFAULT_MODE):
        self.limits = SandboxLimits(cpu_seconds=cpu_seconds, wall_seconds=wall_seconds,
                                    memory_bytes=memory_mb << 20, max_processes=max_processes)
        self.prompt_field = prompt_field
        self.test_field = test_field
        self.entry_point_field = entry_point_field
        self.test_setup_field = test_setup_field
        self.sandbox = check_mode(sandbox)

    def prepare(self, sandbox: str | None = None) -> dict:
        """Fix the sandbox mode (a run-level override wins) and make sure it can run here: raises
        SandboxUnavailable, naming the fix, before any sample is drawn."""
        if sandbox:
            self.sandbox = check_mode(sandbox)
        iso = isolation(self.sandbox)
        if self.sandbox == "unsafe-local":
            log.warning("generated code runs WITHOUT isolation (sandbox: unsafe-local); layers: %s",
                        iso["layers"])
        else:
            log.info("generated code runs in the %s sandbox; layers: %s", self.sandbox, iso["layers"])
        return iso

    def describe(self) -> dict:
        return {"name": "code_execution", **vars(self.limits), "prompt_field": self.prompt_field,
                "test_field": self.test_field, "entry_point_field": self.entry_point_field,
                "test_setup_field": self.test_setup_field, "sandbox": self.sandbox}

    def parts(self, instance: dict) -> tuple[str, str, str | None]:
        """(prompt, tests, entry point) of an instance; errors name the missing field."""
        def field(name):
            if name not in instance:
                raise InputError(f"instance {instance.get('id')!r}: code_execution needs field "
                                 f"{name!r}; its fields: {sorted(instance)}")
            return instance[name]

        prompt = str(field(self.prompt_field)) if self.prompt_field else ""
        test = field(self.test_field)
        test = "\n".join(map(str, test)) if isinstance(test, list) else str(test)
        if self.test_setup_field and instance.get(self.test_setup_field):
            test = f"{instance[self.test_setup_field]}\n{test}"
        entry = str(field(self.entry_point_field)) if self.entry_point_field else None
        return prompt, test, entry

    def run(self, instance: dict, completion: str, attempts: int = 3) -> SandboxResult:
        """The sandbox's verdict.  A sandbox that did not start the job (e.g. the process limit
        reached by concurrent samples) is no verdict on the completion: it is retried, and if it
        persists the job stops (SandboxError) rather than record a false failure."""
        prompt, test, entry = self.parts(instance)
        for attempt in range(attempts):
            res = run_test(prompt, completion, test, entry, self.limits, self.sandbox)
            if res.reason != "sandbox-error":
                return res
            log.warning("instance %s: the sandbox did not run the sample (%s); retrying",
                        instance.get("id"), res.stderr.strip()[-200:] or res.detail)
            time.sleep(0.5 * (attempt + 1))
        raise SandboxError(f"instance {instance.get('id')!r}: the sandbox failed {attempts} times: "
                           f"{res.detail}: {res.stderr.strip()[-500:]}")

    def __call__(self, instance: dict, completion: str) -> bool:
        return self.run(instance, completion).passed
