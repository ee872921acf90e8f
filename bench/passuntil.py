"""PassUntil benchmark, printed side by side in one run.

1. PassUntil against fixed-n at equal error, by simulation, counting every drawn sample (the rest
   of the round after the r-th pass, which the engine draws and does not count, and the attempts
   up to K_max of a censored instance):
   (a) one instance to +-20 % in 95 % of runs, p known to both designs;
   (b) the task-level PU of 50 instances with p log-uniform over [1e-4, 1e-2] to +-20 % in 95 %
       of runs (fixed-n must pick one n for all; PassUntil one r and K_max), PassUntil's estimate
       by the default (r-1)/(K-1) and by `estimator: all_samples` (every drawn sample);
   (c) the law's held-out prediction: 40 instances with known laws at 5 model sizes, the likelihood
       instance law fitted on either design's counts, the task PU predicted at a larger size;
       90th percentile of the relative error against the samples each design drew.
2. The seeded sampler against plain `generate(do_sample=True)` at batch 256 and a 50 257-token
   vocabulary on CPU (and the previous row-by-row draw), tokens/s side by side.
3. On a CUDA machine: vLLM vs HF tokens/s against the memory-bandwidth decode limit; skipped here
   otherwise (printed).

Run: PYTHONPATH=src python bench/passuntil.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # tests/support: the tiny models

from obsscale.passuntil.estimators import point_estimates, simulate_design  # noqa: E402
from obsscale.passuntil.planning import drawn_samples  # noqa: E402
from obsscale.passuntil.rounds import all_samples_estimate, simulate_rounds  # noqa: E402

TOL, COVER = 0.2, 0.95
BATCH = {"initial": 16, "growth": 2.0, "max": 1024}


def _within(est, truth) -> float:
    return float(np.mean(np.abs(est / truth - 1) <= TOL))


def passuntil_cost(p, r, K_max, rng, draws):
    """(share of runs within TOL of the task mean, mean samples drawn) for instances `p`."""
    P = np.broadcast_to(np.asarray(p, float), (draws, len(np.atleast_1d(p))))
    K, s = simulate_design(P, r, K_max, rng)
    est = point_estimates(K, s, r, K_max).mean(axis=1)
    return _within(est, P.mean(axis=1)), float(drawn_samples(K, s, r, K_max, BATCH).sum(axis=1).mean())


def passuntil_all_samples_cost(p, r, K_max, rng, draws):
    """`passuntil_cost` with the `all_samples` estimator (every drawn sample enters the estimate)."""
    P = np.broadcast_to(np.asarray(p, float), (draws, len(np.atleast_1d(p))))
    n, S = simulate_rounds(P, r, K_max, BATCH, rng)
    est = all_samples_estimate(n, S, r, K_max, BATCH).mean(axis=1)
    return _within(est, P.mean(axis=1)), float(n.sum(axis=1).mean())


def fixed_cover(p, n, rng, draws) -> float:
    P = np.broadcast_to(np.asarray(p, float), (draws, len(np.atleast_1d(p))))
    return _within(rng.binomial(n, P).mean(axis=1) / n, P.mean(axis=1))


def smallest_n(p, rng_seed, draws, hi=1000) -> int:
    while fixed_cover(p, hi, np.random.default_rng(rng_seed), draws) < COVER:
        hi *= 2
    lo = max(1, hi // 2)
    while hi - lo > max(1, lo // 50):
        mid = (lo + hi) // 2
        ok = fixed_cover(p, mid, np.random.default_rng(rng_seed), draws) >= COVER
        lo, hi = (lo, mid) if ok else (mid, hi)
    return hi


def smallest_r(p, K_max, draws, seed=1, hi=400):
    """Smallest r whose runs are within TOL in COVER of cases (bisection, common seed)."""
    def ok(r):
        return passuntil_cost(p, r, K_max, np.random.default_rng(seed), draws)[0] >= COVER
    lo = 1
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if ok(mid) else (mid, hi)
    return hi, passuntil_cost(p, hi, K_max, np.random.default_rng(seed), draws)[1]


def comparisons(draws: int, law_repeats: int) -> None:
    print(f"1. PassUntil vs fixed-n at equal error (simulation, {draws} runs per design; samples are all "
          "drawn samples)")
    print("(a) one instance to +-20 % in 95 % of runs, p known")
    print(f"{'p':>8} {'PassUntil r':>12} {'samples':>10} {'fixed n':>10} {'PU / fixed':>11}")
    for p in (1e-2, 1e-3, 1e-4):
        r, cost = smallest_r([p], 10**7, draws)
        n = smallest_n([p], 2, draws, hi=int(10 / p))
        print(f"{p:8.0e} {r:12d} {cost:10.0f} {n:10d} {cost / n:11.2f}")
    # Instances whose p is unknown, log-uniform over [1e-4, 1e-2]: fixed-n must give every instance
    # the n that p = 1e-4 needs; PassUntil's r is the same for all and its cost follows r / p_i.
    ps = 10 ** np.random.default_rng(7).uniform(-4, -2, 200)
    K, s = simulate_design(np.broadcast_to(ps, (max(draws // 50, 20), len(ps))), r, 10**8, np.random.default_rng(8))
    cost = float(drawn_samples(K, s, r, 10**8, BATCH).mean())
    print(f"{'unknown':>8} {r:12d} {cost:10.0f} {n:10d} {cost / n:11.2f}   (per instance, p in [1e-4, 1e-2])")
    print("(b) task-level PU, 50 instances, p log-uniform over [1e-4, 1e-2], to +-20 % in 95 % of runs")
    rng = np.random.default_rng(3)
    p = 10 ** rng.uniform(-4, -2, 50)
    n = smallest_n(p, 4, draws, hi=100)
    print(f"{'fixed-n':<26} n = {n:<8d} samples {50 * n:>10.0f}")
    for K_max in (10_000, 100_000):
        for r in (2, 3, 4, 6):
            cover, cost = passuntil_cost(p, r, K_max, np.random.default_rng(5), draws)
            cover_all, cost_all = passuntil_all_samples_cost(p, r, K_max, np.random.default_rng(5), draws)
            print(f"PassUntil r={r:<2d} K_max={K_max:<8d} within +-20 %: {cover:5.1%} "
                  f"(all_samples {cover_all:5.1%})  samples {cost:>10.0f} ({cost_all:>10.0f})"
                  f"  ({cost / (50 * n):.1f}x fixed-n)")
    law_comparison(law_repeats)


SCENARIOS = {
    # p at the smallest size in [1e-4, 3e-2]: the larger fitted models pass often (emerged).
    "emerged": {"p0": (-4, -1.5), "alpha": (0.4, 0.6)},
    # p at every fitted size below ~3e-2 (p at the smallest in [1e-5, 1e-3]): before emergence.
    "pre-emergence": {"p0": (-5, -3), "alpha": (0.15, 0.25)},
}


def _series(rng, scenario, n_inst=40):
    sizes = 10 ** np.linspace(6, 8, 5)
    alpha = rng.uniform(*scenario["alpha"], n_inst)
    p0 = 10 ** rng.uniform(*scenario["p0"], n_inst)
    log_c = np.log(-np.log(p0)) + alpha * np.log(sizes[0])
    P = np.exp(-np.exp(log_c[:, None] - alpha[:, None] * np.log(sizes)[None]))
    truth = np.exp(-np.exp(log_c - alpha * np.log(10**8.5))).mean()
    return sizes, P, truth


def law_comparison(repeats: int) -> None:
    print(f"(c) the law's held-out prediction (40 instances, 5 sizes 1e6..1e8, predicted at 10^8.5; "
          f"{repeats} series per design)")
    designs = [("PassUntil", r, K) for r, K in ((2, 10_000), (4, 10_000), (2, 100_000))]
    designs += [("fixed", n, None) for n in (200, 1000, 5000)]
    for label, scenario in SCENARIOS.items():
        print(f"   {label}: p at the smallest size 10^{scenario['p0']}, alpha in {scenario['alpha']}")
        print(f"   {'design':<26} {'samples/series':>15} {'median ratio':>13} {'q90 |rel err|':>14}")
        for kind, a, K_max in designs:
            _law_design(kind, a, K_max, scenario, repeats)
    print("   (adaptive allocation by prediction variance: not implemented)")


def _law_design(kind, a, K_max, scenario, repeats) -> None:
    from obsscale.passuntil.likelihood import LikelihoodInstanceLaw

    rng = np.random.default_rng(11)
    ratios, costs = [], []
    for _ in range(repeats):
        sizes, P, truth = _series(rng, scenario)
        if kind == "PassUntil":
            K, s = simulate_design(P, a, K_max, rng)
            costs.append(drawn_samples(K, s, a, K_max, BATCH).sum())
        else:
            K, s = np.full(P.shape, float(a)), rng.binomial(a, P).astype(float)
            costs.append(K.sum())
        counts = pd.DataFrame({"instance": np.repeat(np.arange(P.shape[0]), P.shape[1]),
                               "N": np.tile(sizes, P.shape[0]), "K": K.ravel(), "passes": s.ravel()})
        ratios.append(LikelihoodInstanceLaw(draws=300).fit(counts).predict([10**8.5])[0] / truth)
    ratios = np.array(ratios)
    name = f"PassUntil r={a} K_max={K_max}" if kind == "PassUntil" else f"fixed n={a}"
    print(f"   {name:<26} {np.mean(costs):15.0f} {np.median(ratios):13.3f} "
          f"{np.quantile(np.abs(ratios - 1), 0.9):14.3f}")


def sampler_throughput(batch: int, new_tokens: int, repeats: int, vocab: int = 50257) -> None:
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM, LogitsProcessorList

    from obsscale.passuntil.backends import SeededSampler

    torch.set_num_threads(os.cpu_count() or 1)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    print(f"\n2. sampler throughput: tiny Llama (hidden 64, 2 layers), vocabulary {vocab}, batch {batch}, "
          f"{new_tokens} new tokens, CPU with {torch.get_num_threads()} threads")
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=vocab, hidden_size=64, intermediate_size=256, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=256,
                         pad_token_id=0, bos_token_id=1, eos_token_id=2)
    for device in devices:
        model = LlamaForCausalLM(config).to(device).eval()
        ids = torch.randint(3, vocab, (batch, 8), device=device)
        mask = torch.ones_like(ids)

        class RowByRow(SeededSampler):  # the previous draw: host copy, one generator per row
            def __call__(self, input_ids, scores):
                probs = self.probabilities(scores).cpu()
                gens = [torch.Generator().manual_seed(int(s)) for s in self.seeds.tolist()]
                picks = [torch.multinomial(probs[i], 1, generator=g).item() for i, g in enumerate(gens)]
                out = torch.full_like(scores, float("-inf"))
                out[torch.arange(len(picks)), torch.tensor(picks)] = 0.0
                return out

        def run(sampler):
            cfg = GenerationConfig(do_sample=sampler is None, max_new_tokens=new_tokens,
                                   min_new_tokens=new_tokens, temperature=1.0, pad_token_id=0)
            procs = LogitsProcessorList([sampler(list(range(batch)), 1.0, 1.0)] if sampler else [])
            with torch.inference_mode():
                out = model.generate(input_ids=ids, attention_mask=mask, generation_config=cfg,
                                     logits_processor=procs)
            return (out.shape[1] - ids.shape[1]) * batch

        rows = []
        for name, sampler in (("plain generate(do_sample)", None), ("seeded, vectorised", SeededSampler),
                              ("seeded, row by row (old)", RowByRow)):
            run(sampler)
            if device == "cuda":
                torch.cuda.synchronize()
            t0, toks = time.perf_counter(), 0
            for _ in range(repeats if sampler is not RowByRow else 1):
                toks += run(sampler)
            if device == "cuda":
                torch.cuda.synchronize()
            rows.append((name, toks / (time.perf_counter() - t0)))
        print(f"   {device}: " + "   ".join(f"{n}: {t:,.0f} tok/s" for n, t in rows))
        print(f"   {device}: seeded vectorised / plain = {rows[1][1] / rows[0][1]:.2f}; "
              f"row by row / plain = {rows[2][1] / rows[0][1]:.2f}")


def gpu_section() -> None:
    import torch

    print("\n3. GPU: vLLM vs HF generate against the memory-bandwidth decode limit")
    if not torch.cuda.is_available():
        print("   skipped: no CUDA device on this machine")
        return
    try:
        import vllm  # noqa: F401
    except ImportError:
        print("   vLLM not installed: only HF would be measured; skipped (pip install -r requirements-gpu.txt)")
        return
    from obsscale.passuntil.backends import make_backend
    from support.tiny_models import build_tiny_causal_lm

    props = torch.cuda.get_device_properties(0)
    # Peak bandwidth from the memory clock and bus width where torch exposes them.
    bw = getattr(props, "memory_bandwidth", None)
    if bw is None:
        clock = getattr(props, "memory_clock_rate", 0) * 1e3  # kHz -> Hz
        width = getattr(props, "memory_bus_width", 0)
        bw = 2 * clock * width / 8 if clock and width else float("nan")
    with tempfile.TemporaryDirectory() as d:
        path = build_tiny_causal_lm(f"{d}/m", hidden_size=2048, num_layers=16, num_heads=16,
                                    intermediate_size=5632, seed=0, max_position_embeddings=2048)
        n_params = sum(p.numel() for p in __import__("transformers").AutoModelForCausalLM
                       .from_pretrained(path).parameters())
        weight_bytes = 2 * n_params  # bf16
        batch, new = 256, 128
        prompts = ["Question: what is 12 plus 30? Answer:"] * batch
        res = {}
        for name, opts in (("hf", {"device": "cuda", "dtype": "bfloat16", "max_batch_size": batch}),
                           ("vllm", {"dtype": "bfloat16", "gpu_memory_utilization": 0.5})):
            be = make_backend(name, str(path), **opts)
            be.sample(prompts[:8], list(range(8)), temperature=1.0, top_p=1.0, max_new_tokens=8)
            t0 = time.perf_counter()
            gens = be.sample(prompts, list(range(batch)), temperature=1.0, top_p=1.0, max_new_tokens=new)
            torch.cuda.synchronize()
            res[name] = sum(g.n_tokens for g in gens) / (time.perf_counter() - t0)
            del be
            torch.cuda.empty_cache()
        limit = batch * bw / weight_bytes  # each decode step reads the weights once
        print(f"   model {n_params / 1e9:.2f}B params, batch {batch}, bandwidth {bw / 1e12:.2f} TB/s, "
              f"decode limit {limit:.0f} tokens/s")
        for name, tps in res.items():
            print(f"   {name:<6} {tps:10.0f} tokens/s  = {tps / limit:6.1%} of the limit")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="fewer draws and repeats")
    args = ap.parse_args()
    comparisons(draws=2000 if args.quick else 10000, law_repeats=6 if args.quick else 20)
    sampler_throughput(batch=256, new_tokens=8 if args.quick else 16, repeats=1 if args.quick else 3)
    gpu_section()


if __name__ == "__main__":
    main()
