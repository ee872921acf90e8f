"""CPU cost of one training step of each model of a ladder config, side by side.

    PYTHONPATH=src python bench/ladder_steps.py [config/ladder.yaml]

Prints, per model, N, CPU milliseconds per step (one thread, 20 timed steps after 3 warm-up steps)
and the training CPU seconds each model's step count (the recipe's) implies, with each model's ratio to the
smallest.  Used to size config/ladder.yaml within its 30-minute budget on 2 cores.
"""

from __future__ import annotations

import sys
import time

import torch
import yaml

from obsscale.ladder.sheet import architecture, model_training
from obsscale.ladder.train import build_char_tokenizer, build_model, non_embedding_parameters


def main(path: str = "config/ladder.yaml") -> None:
    ladder = yaml.safe_load(open(path))["ladder"]
    training = ladder["training"]
    batch, seq = int(training.get("batch_size", 32)), int(training.get("seq_len", 64))
    torch.set_num_threads(1)
    tok = build_char_tokenizer()
    rows = []
    for m in ladder["models"]:
        arch = architecture(m)
        model = build_model(arch, len(tok), seq + 1, tok, seed=0)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
        x = torch.randint(0, len(tok), (batch, seq + 1))
        for i in range(23):
            if i == 3:
                t0 = time.process_time()
            logits = model(input_ids=x[:, :-1]).logits
            loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1))
            opt.zero_grad()
            loss.backward()
            opt.step()
        ms = (time.process_time() - t0) / 20 * 1000
        rows.append((m["name"], non_embedding_parameters(arch), ms, int(model_training(training, m)["steps"])))
    base = rows[0][2]
    total = 0.0
    print(f"{'model':<16}{'N':>10}{'steps':>8}{'ms/step':>10}{'x smallest':>12}{'train CPU s':>13}")
    for name, n, ms, steps in rows:
        total += ms * steps / 1000
        print(f"{name:<16}{n:>10}{steps:>8}{ms:>10.1f}{ms / base:>12.1f}{ms * steps / 1000:>13.0f}")
    longest = max(ms * steps / 1000 for _, _, ms, steps in rows)
    print(f"total training CPU: {total:.0f} s; longest job alone: {longest:.0f} s")


if __name__ == "__main__":
    main(*sys.argv[1:])
