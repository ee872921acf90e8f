"""A pilot of the ladder's training recipe: one model of a given width trained by the ladder's own
training step, with the exact pass rate of 2- and 3-digit addition measured at chosen steps.

The exact pass rate of a held-out problem is the probability, by teacher forcing, of its answer
followed by the newline (bench/passuntil_exact.py), averaged over 200 held-out problems per task:
what PassUntil would estimate at temperature 1, without sampling.  The corpus is config/ladder.yaml's
(written to --work once).  Prints one line per checkpoint: width, N, step, CPU seconds so far and
the two exact pass rates.  The numbers of docs/ladder.md ("How the recipe was chosen") came from
this script:

    PYTHONPATH=src .venv/bin/python bench/ladder_pilot.py 48 4000 1000,2000,3000,4000
    PYTHONPATH=src .venv/bin/python bench/ladder_pilot.py 48 6000 2000,3000,4000 --lr 4e-3

By default the learning rate is the first pilot's rule, 3e-3 x 64 / width.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from passuntil_exact import answer_probabilities  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("width", type=int)
    ap.add_argument("steps", type=int, help="length of the schedule (cosine decay over it)")
    ap.add_argument("checkpoints", help="comma-separated steps at which to measure")
    ap.add_argument("--lr", type=float, default=None, help="peak learning rate (default 3e-3 x 64 / width)")
    ap.add_argument("--loss", default="all", choices=("all", "answers"), help="training loss (ladder.training.loss)")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--work", default="/tmp/obsscale-ladder-pilot", help="folder of the corpus")
    args = ap.parse_args()

    import torch

    from obsscale.ladder.corpus import held_out_problems, write_corpus
    from obsscale.ladder.model import build_model
    from obsscale.ladder.sheet import architecture
    from obsscale.ladder.train import (TrainingSettings, _build_optimizer, _corpus_windows, _train_step,
                                       build_char_tokenizer, non_embedding_parameters)

    torch.set_num_threads(1)
    ladder = yaml.safe_load((ROOT / "config/ladder.yaml").read_text())["ladder"]
    corpus = Path(args.work) / "corpus.txt"
    if not corpus.exists():
        corpus.parent.mkdir(parents=True, exist_ok=True)
        write_corpus(corpus, ladder["corpus"]["mixture"], int(ladder["corpus"]["lines"]), int(ladder["seed"]))
    tok = build_char_tokenizer()
    problems = {f"add{d}": held_out_problems("add", d, 200, 0) for d in (2, 3)}
    lr = args.lr if args.lr is not None else 3e-3 * 64 / args.width
    arch = architecture({"hidden_size": args.width, "num_layers": 2})
    settings = TrainingSettings(steps=args.steps, batch_size=args.batch_size, seq_len=48, lr=lr, warmup=100,
                                min_lr_ratio=0.1, seed=0, loss=args.loss)
    windows = _corpus_windows(corpus, tok, settings)
    model = build_model(arch, len(tok), settings.seq_len + 1, tok, 0)
    optimizer = _build_optimizer(model, settings)
    checkpoints = {int(s) for s in args.checkpoints.split(",")}
    n = non_embedding_parameters(arch)
    print(f"{'width':>6}{'N':>9}{'step':>7}{'CPU s':>8}{'exact add2':>12}{'exact add3':>12}   (lr {lr:.3g})")
    for step in range(args.steps):
        _train_step(model, optimizer, windows, step, settings, "cpu")
        if step + 1 in checkpoints:
            model.eval()
            with torch.inference_mode():
                rates = {k: float(np.mean(answer_probabilities(model, tok, [p.prompt for p in ps],
                                                               [p.answer for p in ps], "\n")))
                         for k, ps in problems.items()}
            model.train()
            print(f"{args.width:>6}{n:>9}{step + 1:>7}{time.process_time():>8.0f}"
                  f"{rates['add2']:>12.4g}{rates['add3']:>12.4g}", flush=True)


if __name__ == "__main__":
    main()
