"""PassUntil's estimates on real models against their exact pass rates.

A ladder task is judged by an exact match of the sampled text up to the stop string "\\n", sampled
at temperature 1 with top_p 1.  A model's pass rate on an instance is then a number one forward
pass computes: the probability, by teacher forcing, of the answer followed by the newline, plus of
the answer followed by the end-of-text token (decoding drops it).  Sequences with another special
token inside the answer also decode to it; the trained models give those tokens almost no
probability, so the exact rate here is a lower bound by at most their mass.

For every model of a finished PassUntil run (results/passuntil/<series>/<task>/estimates.csv) this
prints, side by side: the task's exact PU (mean over instances of the exact rate), PassUntil's PU
(mean of the unbiased p_hat), their ratio, whether the exact PU lies inside PassUntil's task
interval [PU_low, PU_high] (summary.csv beside the estimates), and the share of instances whose
exact rate lies inside PassUntil's per-instance 95 % interval [low, high] (censored instances
included: their interval runs from 0).  It measures, on real models rather than simulated counts, what the simulations of
tests/test_passuntil*.py check: that the estimates are unbiased and the intervals honest.

    PYTHONPATH=src .venv/bin/python bench/passuntil_exact.py results/ladder/tasks/passuntil/ladder_add3.yaml \\
        results/passuntil/ladder/ladder_add3/estimates.csv [--models-dir results/ladder/models]
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import pandas as pd


def exact_pass_rates(model_dir: Path, prompts: list[str], answers: list[str], stop: str) -> np.ndarray:
    """P(answer + stop) + P(answer + EOS) under the saved model, for each (prompt, answer)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    return answer_probabilities(model, tok, prompts, answers, stop)


def answer_probabilities(model, tok, prompts: list[str], answers: list[str], stop: str) -> np.ndarray:
    """P(answer + stop) + P(answer + EOS) under `model` (in eval mode) with tokenizer `tok`."""
    import torch

    stop_id = tok(stop, add_special_tokens=False)["input_ids"]
    if len(stop_id) != 1:
        raise SystemExit(f"the stop string {stop!r} is not one token of the model's tokenizer")
    rates = []
    with torch.inference_mode():
        for prompt, answer in zip(prompts, answers):
            head = tok(prompt)["input_ids"]
            body = tok(answer, add_special_tokens=False)["input_ids"]
            ids = torch.tensor([head + body])
            logp = torch.log_softmax(model(input_ids=ids).logits[0].double(), dim=-1)
            # log P(answer | prompt): the answer's tokens, each predicted at the position before it.
            positions = torch.arange(len(head) - 1, len(head) + len(body) - 1)
            answer_lp = logp[positions, torch.tensor(body)].sum().item()
            last = logp[len(head) + len(body) - 1]
            end = math.exp(last[stop_id[0]].item())
            if tok.eos_token_id is not None:
                end += math.exp(last[tok.eos_token_id].item())
            rates.append(math.exp(answer_lp) * end)
    return np.asarray(rates)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("task", help="the PassUntil task YAML of the run")
    ap.add_argument("estimates", help="the run's estimates.csv")
    ap.add_argument("--models-dir", default="results/ladder/models", help="folder of the models, by name")
    args = ap.parse_args()

    from obsscale.passuntil.tasks import load_task

    task = load_task(args.task)
    if task.temperature != 1.0 or task.top_p != 1.0 or len(task.stop) != 1:
        raise SystemExit("exact rates need temperature 1, top_p 1 and one stop string")
    est = pd.read_csv(args.estimates)
    summary = pd.read_csv(Path(args.estimates).with_name("summary.csv")).set_index("model")
    by_id = {str(inst["id"]): inst for inst in task.instances}
    print(f"task {task.name}: {len(by_id)} instances, r = {task.r}, K_max = {task.K_max}")
    print(f"{'model':<14}{'N':>9}{'exact PU':>12}{'PassUntil PU':>14}{'ratio':>8}{'task interval':>20}"
          f"{'exact inside':>14}{'instances: exact in 95 % CI':>30}{'censored':>10}")
    ratios, covered = [], []
    for model, rows in est.groupby("model", sort=False):
        rows = rows.assign(instance=rows["instance"].astype(str))
        insts = [by_id[i] for i in rows["instance"]]
        exact = exact_pass_rates(Path(args.models_dir) / model, [task.render(i) for i in insts],
                                 [str(i["answer"]) for i in insts], task.stop[0])
        inside = np.mean((rows["low"].fillna(0).to_numpy() <= exact) & (exact <= rows["high"].to_numpy()))
        pu_exact, pu_hat = exact.mean(), rows["p_hat"].mean()
        ratios.append(pu_hat / pu_exact)
        lo, hi = summary.loc[model, "PU_low"], summary.loc[model, "PU_high"]
        covered.append(lo <= pu_exact <= hi)
        print(f"{model:<14}{rows['N'].iloc[0]:>9.0f}{pu_exact:>12.4g}{pu_hat:>14.4g}{pu_hat / pu_exact:>8.3f}"
              f"{f'{lo:.4g}-{hi:.4g}':>20}{'yes' if covered[-1] else 'no':>14}{inside:>30.2f}"
              f"{int(rows['censored'].sum()):>10}")
    print(f"PassUntil PU / exact PU over the models: median {np.median(ratios):.3f}, "
          f"range {min(ratios):.3f}-{max(ratios):.3f}; exact PU inside the task interval for "
          f"{sum(covered)} of {len(covered)} models")


if __name__ == "__main__":
    main()
