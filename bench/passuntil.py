"""PassUntil benchmark, printed side by side in one run.

1. Samples needed to estimate a pass rate to +-20 % relative error (95 % of estimates within
   +-20 %), by simulation: PassUntil (sample until r passes, unbiased (r-1)/(K-1)) against a fixed-n
   design (n samples, s/n), at p = 1e-3 and 1e-4.
   - one instance with p known in advance: both designs can be tuned to p (the honest baseline);
   - a task whose instances' p are unknown and spread log-uniformly over two decades above p_min:
     the fixed-n design must take the n that p_min needs on every instance; PassUntil's r is the
     same for every instance and its cost adapts (r / p_i).
2. HF backend sampling throughput on CPU with a tiny model: HF `generate(do_sample=True)` (one
   global RNG) against the engine's per-sample-seeded sampler (tokens/s, samples/s).
3. On a CUDA machine: vLLM vs HF tokens/s against the memory-bandwidth decode limit; skipped here
   otherwise (printed).

Run: PYTHONPATH=src python bench/passuntil.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # tests/support: the tiny models

TOL, COVER = 0.2, 0.95


def coverage_nb(r: int, p: float, rng, draws: int) -> float:
    K = rng.negative_binomial(r, p, size=draws) + r
    est = (r - 1) / (K - 1)
    return float(np.mean(np.abs(est / p - 1) <= TOL))


def coverage_fixed(n: int, p: float, rng, draws: int) -> float:
    est = rng.binomial(n, p, size=draws) / n
    return float(np.mean(np.abs(est / p - 1) <= TOL))


def smallest(cover, lo: int, hi: int, p: float, draws: int, seed: int) -> int:
    """Smallest design size whose simulated coverage reaches COVER (bisection, common seed)."""
    while cover(hi, p, np.random.default_rng(seed), draws) < COVER:
        hi *= 2
    while hi - lo > max(1, lo // 200):
        mid = (lo + hi) // 2
        if cover(mid, p, np.random.default_rng(seed), draws) >= COVER:
            hi = mid
        else:
            lo = mid
    return hi


def sample_size_table(draws: int) -> None:
    print("1. samples to reach +-20 % relative error (95 % of estimates), simulation with "
          f"{draws} draws per design size")
    print(f"{'p':>8} {'case':<34} {'PassUntil':>12} {'fixed-n':>12} {'ratio':>7}")
    for p in (1e-3, 1e-4):
        r = smallest(coverage_nb, 3, 200, p, draws, 1)
        n = smallest(coverage_fixed, 10, int(200 / p), p, draws, 2)
        pu = r / p  # E[K] = r / p
        print(f"{p:8.0e} {'one instance, p known':<34} {pu:12.0f} {n:12.0f} {pu / n:7.2f}"
              f"   (r = {r})")
        # Instances log-uniform over [p, 100 p], p unknown: fixed n must serve the smallest p.
        rng = np.random.default_rng(3)
        ps = p * 10 ** rng.uniform(0, 2, size=1000)
        pu_task = float(np.mean(r / ps))
        print(f"{p:8.0e} {'task, p_i in [p, 100p], unknown':<34} {pu_task:12.0f} {n:12.0f} "
              f"{pu_task / n:7.2f}   (mean per instance)")


def hf_throughput(batch: int, new_tokens: int, repeats: int) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from obsscale.passuntil.backends import make_backend
    from support.tiny_models import build_tiny_causal_lm

    torch.set_num_threads(os.cpu_count() or 1)
    print(f"\n2. HF backend on CPU ({torch.get_num_threads()} threads), tiny Llama (hidden 64, 2 layers), "
          f"batch {batch}, {new_tokens} new tokens")
    with tempfile.TemporaryDirectory() as d:
        path = build_tiny_causal_lm(f"{d}/m", hidden_size=64, num_layers=2, num_heads=4, seed=0)
        tok = AutoTokenizer.from_pretrained(path)
        tok.padding_side = "left"
        model = AutoModelForCausalLM.from_pretrained(path).eval()
        prompts = ["Question: what is 12 plus 30? Answer:"] * batch
        enc = tok(prompts, return_tensors="pt", padding=True)

        def plain():
            with torch.inference_mode():
                out = model.generate(**enc, do_sample=True, temperature=1.0, top_p=1.0, top_k=0,
                                     max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                                     pad_token_id=tok.pad_token_id)
            return int((out.shape[1] - enc["input_ids"].shape[1]) * batch)

        backend = make_backend("hf", str(path), max_batch_size=batch)

        def seeded():
            gens = backend.sample(prompts, list(range(batch)), temperature=1.0, top_p=1.0,
                                  max_new_tokens=new_tokens)
            return sum(g.n_tokens for g in gens)

        rows = []
        for name, fn in (("HF generate, global RNG", plain), ("engine, per-sample seeds", seeded)):
            fn()  # warm-up
            t0, toks = time.perf_counter(), 0
            for _ in range(repeats):
                toks += fn()
            dt = time.perf_counter() - t0
            rows.append((name, toks / dt, batch * repeats / dt))
        print(f"{'':<28} {'tokens/s':>10} {'samples/s':>10}")
        for name, tps, sps in rows:
            print(f"{name:<28} {tps:10.0f} {sps:10.1f}")
        print(f"{'ratio (engine / plain)':<28} {rows[1][1] / rows[0][1]:10.2f} "
              f"{rows[1][2] / rows[0][2]:10.2f}   (the engine stops rows at EOS; plain runs to "
              "min_new_tokens)")


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
    sample_size_table(draws=4000 if args.quick else 20000)
    hf_throughput(batch=32, new_tokens=32, repeats=2 if args.quick else 5)
    gpu_section()


if __name__ == "__main__":
    main()
