"""Held-out evaluation tasks of the ladder, written as data for lm-eval and for PassUntil.

For every held-out (task, size) the pipeline writes
- `<out>/lm_eval/ladder_<task><size>_gen.yaml`: greedy generation scored by exact match,
- `<out>/lm_eval/ladder_<task><size>_mc.yaml`: multiple choice among the answer and near misses,
- `<out>/passuntil/ladder_<task><size>.yaml`: the same problems for PassUntil sampling,
each beside its JSONL.  Data paths are absolute, resolved when the files are written, so lm-eval
and the PassUntil stage find them from any working directory.  The problems come from the
held-out slice of the corpus (`corpus.is_held_out`), so no model was trained on them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import yaml

from obsscale.core.io import write_text
from obsscale.ladder.corpus import distractors, held_out_problems


def task_stem(task: str, size: int) -> str:
    return f"ladder_{task}{int(size)}"


def _write_jsonl(rows: list[dict], path: Path) -> None:
    write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in rows), path)


def _write_yaml(obj: dict, path: Path, comment: str) -> None:
    write_text(f"# {comment}\n" + yaml.safe_dump(obj, sort_keys=False, allow_unicode=True), path)


def write_held_out_tasks(
    out_dir: str | os.PathLike,
    tasks: list[dict],
    n: int,
    seed: int,
    mc_choices: int = 4,
    passuntil: dict | None = None,
) -> list[str]:
    """Write every held-out task (see module docstring); returns the stems written.

    `tasks` is a list of {task, size}; `passuntil` holds the PassUntil sampling design (r, K_max,
    batch, seed) copied into each PassUntil task file.
    """
    out = Path(out_dir).resolve()
    passuntil = dict(passuntil or {})
    stems = []
    for spec in tasks:
        task, size = str(spec["task"]), int(spec["size"])
        stem = task_stem(task, size)
        stems.append(stem)
        problems = held_out_problems(task, size, n, seed)
        rng = np.random.default_rng([seed, size, len(stem)])
        gen_rows, mc_rows = _task_rows(stem, problems, rng, mc_choices)
        gen_data = out / "data" / f"{stem}.jsonl"
        mc_data = out / "data" / f"{stem}_mc.jsonl"
        _write_jsonl(gen_rows, gen_data)
        _write_jsonl(mc_rows, mc_data)
        max_answer = max(len(p.answer) for p in problems)
        _write_lm_eval_tasks(out, stem, task, size, gen_data, mc_data, max_answer)
        _write_passuntil_task(out, stem, task, size, gen_data, max_answer, passuntil)
    return stems


def _task_rows(stem: str, problems, rng, mc_choices: int) -> tuple[list[dict], list[dict]]:
    """The generation rows and the multiple-choice rows (answer shuffled among near misses)."""
    gen_rows, mc_rows = [], []
    for i, p in enumerate(problems):
        gen_rows.append({"id": f"{stem}-{i}", "prompt": p.prompt, "answer": p.answer})
        choices = [p.answer] + distractors(p, rng, mc_choices - 1)
        order = rng.permutation(len(choices))
        shuffled = [choices[j] for j in order]
        mc_rows.append(
            {"id": f"{stem}-{i}", "prompt": p.prompt, "choices": shuffled,
             "label": int(np.flatnonzero(order == 0)[0])}
        )
    return gen_rows, mc_rows


def _write_lm_eval_tasks(out: Path, stem: str, task: str, size: int, gen_data: Path, mc_data: Path,
                         max_answer: int) -> None:
    """The lm-eval task files: greedy generation with exact match, and multiple choice."""
    common = {
        "dataset_path": "json",
        "test_split": "test",
        "fewshot_split": "test",
        "doc_to_text": "{{prompt}}",
        # The corpus writes the answer right after "=", with no space.
        "target_delimiter": "",
        "fewshot_delimiter": "\n",
        "metadata": {"version": 1.0},
    }
    _write_yaml(
        {
            "task": f"{stem}_gen",
            **common,
            "dataset_kwargs": {"data_files": {"test": str(gen_data)}},
            "output_type": "generate_until",
            "doc_to_target": "{{answer}}",
            "generation_kwargs": {"until": ["\n"], "max_gen_toks": max_answer + 2, "do_sample": False},
            "metric_list": [{"metric": "exact_match", "aggregation": "mean", "higher_is_better": True}],
        },
        out / "lm_eval" / f"{stem}_gen.yaml",
        f"Held-out ladder task {task} (size {size}): greedy generation, exact match.",
    )
    _write_yaml(
        {
            "task": f"{stem}_mc",
            **common,
            "dataset_kwargs": {"data_files": {"test": str(mc_data)}},
            "output_type": "multiple_choice",
            "doc_to_choice": "{{choices}}",
            "doc_to_target": "label",
            "metric_list": [{"metric": "acc", "aggregation": "mean", "higher_is_better": True}],
        },
        out / "lm_eval" / f"{stem}_mc.yaml",
        f"Held-out ladder task {task} (size {size}): choose the answer among near misses.",
    )


def _write_passuntil_task(out: Path, stem: str, task: str, size: int, gen_data: Path, max_answer: int,
                          passuntil: dict) -> None:
    """The PassUntil task file over the generation rows, with the sampling design copied in."""
    _write_yaml(
        {
            "name": stem,
            "description": f"held-out {task} problems of size {size} (never in the training corpus)",
            "data": {"path": str(gen_data)},
            "prompt": "{prompt}",
            "checker": {"name": "exact_match", "ignore_case": False, "strip_punctuation": False},
            "stop": ["\n"],
            "max_new_tokens": max_answer + 2,
            "temperature": 1.0,
            "top_p": 1.0,
            **passuntil,
        },
        out / "passuntil" / f"{stem}.yaml",
        f"PassUntil task over the held-out ladder problems {task} (size {size}).",
    )


def held_out_files(tasks_dir: str, tasks: list[dict]) -> list[str]:
    """Every file `write_held_out_tasks` writes for `tasks` (the outputs of the rule that writes them)."""
    files = []
    for spec in tasks:
        stem = task_stem(spec["task"], spec["size"])
        files += [
            f"{tasks_dir}/data/{stem}.jsonl",
            f"{tasks_dir}/data/{stem}_mc.jsonl",
            f"{tasks_dir}/lm_eval/{stem}_gen.yaml",
            f"{tasks_dir}/lm_eval/{stem}_mc.yaml",
            f"{tasks_dir}/passuntil/{stem}.yaml",
        ]
    return files
