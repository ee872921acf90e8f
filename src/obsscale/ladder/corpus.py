"""A synthetic text corpus of small algorithmic tasks, and held-out problems disjoint from it.

Every problem is one line `PROMPT=ANSWER` ("12+345=357", "rev:abc=cba").  A problem belongs to the
held-out side when a stable hash of its prompt falls in a fixed slice, so the split needs no list
of excluded problems, is the same for any seed, and the training corpus can never contain a
held-out prompt (tests check it).
"""

from __future__ import annotations

import hashlib
import string
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np

LETTERS = string.ascii_lowercase[:8]  # a small alphabet keeps the string tasks learnable
HELD_OUT_MODULUS = 10  # one prompt in ten is reserved for evaluation


@dataclass(frozen=True)
class Problem:
    task: str
    prompt: str  # ends with "="
    answer: str

    @property
    def line(self) -> str:
        return f"{self.prompt}{self.answer}"


def is_held_out(prompt: str) -> bool:
    digest = hashlib.sha1(prompt.encode()).digest()
    return int.from_bytes(digest[:4], "big") % HELD_OUT_MODULUS == 0


def _number(rng: np.random.Generator, digits: int) -> int:
    if digits == 1:
        return int(rng.integers(0, 10))
    return int(rng.integers(10 ** (digits - 1), 10**digits))


def _word(rng: np.random.Generator, length: int) -> str:
    return "".join(LETTERS[i] for i in rng.integers(0, len(LETTERS), size=length))


def make_add(rng: np.random.Generator, digits: int) -> Problem:
    a, b = _number(rng, digits), _number(rng, int(rng.integers(1, digits + 1)))
    if rng.random() < 0.5:
        a, b = b, a
    return Problem("add", f"{a}+{b}=", str(a + b))


def make_rev(rng: np.random.Generator, length: int) -> Problem:
    w = _word(rng, length)
    return Problem("rev", f"rev:{w}=", w[::-1])


def make_copy(rng: np.random.Generator, length: int) -> Problem:
    w = _word(rng, length)
    return Problem("copy", f"copy:{w}=", w)


def make_sort(rng: np.random.Generator, length: int) -> Problem:
    w = _word(rng, length)
    return Problem("sort", f"sort:{w}=", "".join(sorted(w)))


# Each task's generator takes its size (digits or letters).
TASKS: dict[str, Callable[[np.random.Generator, int], Problem]] = {
    "add": make_add,
    "rev": make_rev,
    "copy": make_copy,
    "sort": make_sort,
}


def check_task(name: str) -> None:
    if name not in TASKS:
        raise ValueError(f"ladder: unknown corpus task {name!r}; known: {', '.join(TASKS)}")


def training_problems(mixture: dict[str, dict], n_lines: int, seed: int) -> Iterator[Problem]:
    """`n_lines` training problems; `mixture` maps task -> {weight, min_size, max_size}.

    Deterministic under `seed`; held-out prompts are redrawn, never emitted.
    """
    for name in mixture:
        check_task(name)
    names = list(mixture)
    weights = np.array([float(mixture[n].get("weight", 1.0)) for n in names])
    weights = weights / weights.sum()
    rng = np.random.default_rng(seed)
    emitted = 0
    while emitted < n_lines:
        name = names[int(rng.choice(len(names), p=weights))]
        spec = mixture[name]
        size = int(rng.integers(int(spec["min_size"]), int(spec["max_size"]) + 1))
        problem = TASKS[name](rng, size)
        if is_held_out(problem.prompt):
            continue
        emitted += 1
        yield problem


def held_out_problems(task: str, size: int, n: int, seed: int) -> list[Problem]:
    """`n` distinct held-out problems of one task at one size (never in any training corpus)."""
    check_task(task)
    rng = np.random.default_rng([seed, 7919, size])
    seen: set[str] = set()
    out: list[Problem] = []
    attempts = 0
    while len(out) < n:
        attempts += 1
        if attempts > 10000 * n:
            raise ValueError(f"ladder: cannot draw {n} distinct held-out {task} problems of size {size}")
        problem = TASKS[task](rng, size)
        if problem.prompt in seen or not is_held_out(problem.prompt):
            continue
        seen.add(problem.prompt)
        out.append(problem)
    return out


def distractors(problem: Problem, rng: np.random.Generator, n: int) -> list[str]:
    """`n` wrong answers close to the right one: same length, one or two characters changed."""
    answer = problem.answer
    alphabet = string.digits if problem.task == "add" else LETTERS
    out: list[str] = []
    while len(out) < n:
        chars = list(answer)
        for _ in range(int(rng.integers(1, 3))):
            i = int(rng.integers(0, len(chars)))
            chars[i] = alphabet[int(rng.integers(0, len(alphabet)))]
        wrong = "".join(chars)
        leading_zero = problem.task == "add" and len(wrong) > 1 and wrong[0] == "0"
        if wrong != answer and wrong not in out and not leading_zero:
            out.append(wrong)
    return out


def write_corpus(path, mixture: dict[str, dict], n_lines: int, seed: int) -> int:
    """Write the training corpus, one problem per line; returns the number of characters."""
    from obsscale.core.io import write_text

    text = "".join(p.line + "\n" for p in training_problems(mixture, n_lines, seed))
    write_text(text, path)
    return len(text)
