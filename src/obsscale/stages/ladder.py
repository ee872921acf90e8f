"""The ladder's steps as the rules call them: plain arguments in, files out."""

from __future__ import annotations

import logging
import os

from obsscale.core.io import write_json
from obsscale.ladder.corpus import write_corpus
from obsscale.ladder.sheet import architecture, check_sheet_agrees, trained_sheet, write_sheet
from obsscale.ladder.tasks import write_held_out_tasks
from obsscale.ladder.train import TrainingSettings, train_model

log = logging.getLogger(__name__)


def make_ladder_data(corpus_path: str, tasks_dir: str, manifest: str, ladder: dict) -> None:
    """The training corpus and the held-out tasks (one step: both come from one split)."""
    seed = int(ladder.get("seed", 0))
    corpus = ladder["corpus"]
    n_chars = write_corpus(corpus_path, corpus["mixture"], int(corpus["lines"]), seed)
    held = ladder["held_out"]
    stems = write_held_out_tasks(
        tasks_dir, held["tasks"], int(held["n"]), seed, int(held.get("mc_choices", 4)), held.get("passuntil")
    )
    log.info("corpus %s: %d lines, %d characters; held-out tasks %s", corpus_path, corpus["lines"], n_chars, stems)
    write_json({"corpus": corpus_path, "characters": n_chars, "tasks": stems, "seed": seed}, manifest)


def train_ladder_model(
    corpus: str, output_dir: str, checkpoint: str, model: dict, training: dict, seed: int,
    threads: int = 1, device: str = "auto",
) -> dict:
    settings = TrainingSettings(seed=int(seed), **training)
    record = train_model(
        corpus, output_dir, checkpoint, architecture(model), settings, threads=threads, device=device
    )
    keys = ("non_embedding_parameters", "training_tokens", "training_flops", "train_seconds_this_run")
    log.info("trained %s: %s", model["name"], {k: record[k] for k in keys})
    if os.path.exists(checkpoint):
        os.remove(checkpoint)  # the finished model supersedes it
    return record


def write_ladder_sheet(
    model_dirs: list[str], sheet_path: str, ladder: dict, check_against: str | None = None
) -> None:
    sheet = trained_sheet(ladder, model_dirs)
    if check_against:
        check_sheet_agrees(sheet, check_against)
    write_sheet(sheet, sheet_path, "Model sheet of the trained ladder (N, D, C = 6ND from the training records).")
