"""One generation interface over HF transformers `generate` (CPU/GPU) and vLLM (GPU).

`sample(prompts, seeds, ...)` draws one completion per prompt, the i-th from its own seed, so that a
sample is a function of (model, prompt, seed) and not of which other requests share its batch:

- HF: `generate` runs greedy decoding over logits that a `SeededSampler` processor has replaced by
  a one-hot of a token drawn by inverse CDF from a counter-based uniform of (row seed, step)
  (temperature and top-p applied first), vectorised over the batch on the model's device.
  Batching, padding, KV cache and stopping stay HF's own code.  The draw is bit-identical for an
  identical batch plan (the engine replays the same plan on resume); across different batch plans
  it is identical up to float rounding of the batched forward pass.
- vLLM: one `SamplingParams(seed=...)` per request, vLLM's documented per-request seeding.
- `simulated`: a test/benchmark backend whose prompt is a pass probability; a sample is "1" with
  that probability, from the seed.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from typing import Sequence

log = logging.getLogger(__name__)

from obsscale.core.registry import Registry  # noqa: E402

BACKENDS: Registry[type] = Registry("backend")
register = BACKENDS.register


@dataclass
class Generation:
    text: str
    n_tokens: int


def truncate_at_stop(text: str, stop: Sequence[str]) -> str:
    cut = len(text)
    for s in stop or ():
        i = text.find(s)
        if s and i != -1:
            cut = min(cut, i)
    return text[:cut]


def make_backend(name: str, path: str | None = None, **options) -> "Backend":
    return BACKENDS.get(name)(path, **options)


class Backend:
    name = "backend"

    def sample(self, prompts: Sequence[str], seeds: Sequence[int], *, temperature: float,
               top_p: float, max_new_tokens: int, stop: Sequence[str] = ()) -> list[Generation]:
        raise NotImplementedError

    def greedy(self, prompts: Sequence[str], *, max_new_tokens: int,
               stop: Sequence[str] = ()) -> list[Generation]:
        raise NotImplementedError


@register("hf")
class HFBackend(Backend):
    """transformers `AutoModelForCausalLM` on CPU or GPU."""

    def __init__(self, path: str, device: str = "cpu", dtype: str = "float32",
                 max_batch_size: int = 64, threads: int | None = None):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if threads:
            torch.set_num_threads(int(threads))
        self.torch = torch
        self.device = device
        self.max_batch_size = int(max_batch_size)
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        # Left padding: every row's next token is predicted at the last position.
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model = AutoModelForCausalLM.from_pretrained(
            path, dtype=getattr(torch, dtype)).to(device).eval()

    def _generate(self, prompts, seeds, temperature, top_p, max_new_tokens, stop):
        from transformers import GenerationConfig, LogitsProcessorList, StoppingCriteriaList

        out: list[Generation] = []
        tok = self.tokenizer
        for start in range(0, len(prompts), self.max_batch_size):
            chunk = list(prompts[start:start + self.max_batch_size])
            enc = tok(chunk, return_tensors="pt", padding=True).to(self.device)
            procs = LogitsProcessorList()
            if seeds is not None:
                procs.append(SeededSampler(seeds[start:start + len(chunk)], temperature, top_p))
            width = enc["input_ids"].shape[1]
            criteria = StoppingCriteriaList([StopOnStrings(tok, stop, width)] if stop else [])
            config = GenerationConfig(do_sample=False, max_new_tokens=max_new_tokens,
                                      pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
            with self.torch.inference_mode():
                ids = self.model.generate(**enc, generation_config=config, logits_processor=procs,
                                          stopping_criteria=criteria)
            for row in ids[:, width:]:
                row = row.tolist()
                n = next((j + 1 for j, t in enumerate(row) if t == tok.eos_token_id), len(row))
                text = tok.decode(row[:n], skip_special_tokens=True)
                out.append(Generation(truncate_at_stop(text, stop), n))
        return out

    def sample(self, prompts, seeds, *, temperature, top_p, max_new_tokens, stop=()):
        if len(prompts) != len(seeds):
            raise ValueError("one seed per prompt")
        return self._generate(prompts, list(seeds), temperature, top_p, max_new_tokens, stop)

    def greedy(self, prompts, *, max_new_tokens, stop=()):
        return self._generate(prompts, None, 1.0, 1.0, max_new_tokens, stop)


_MASK32 = 0xFFFFFFFF


def _mix32(x):
    """A 32-bit integer hash (murmur3's finaliser with a multiplier below 2**31), elementwise on an
    int64 tensor holding values in [0, 2**32): every product stays below 2**63, so it is exact and
    identical on every device."""
    x = x ^ (x >> 16)
    x = (x * 0x45D9F3B) & _MASK32
    x = x ^ (x >> 16)
    x = (x * 0x45D9F3B) & _MASK32
    return x ^ (x >> 16)


def seeded_uniforms(seeds, step: int):
    """One uniform in [0, 1) per row, a pure function of (row seed, decoding step): 53 random bits
    from two 32-bit hashes of (seed high word, seed low word, step, lane).  Counter-based, so a
    whole batch is drawn in a few vectorised integer operations on the seeds' device."""
    import torch

    lo = seeds & _MASK32
    hi = (seeds >> 32) & _MASK32
    base = _mix32(lo ^ _mix32(hi ^ _mix32(torch.full_like(seeds, step & _MASK32) ^ 0x5BD1E995)))
    a = _mix32(base ^ 0x1B873593) >> 6  # 26 bits
    b = _mix32(base ^ 0x68E31DA4) >> 5  # 27 bits
    return (a.double() * 2.0**27 + b.double()) / 2.0**53


class SeededSampler:
    """Logits processor: draws each row's next token by inverse CDF from its own counter-based
    uniform (`seeded_uniforms` of the row's seed and the step), and returns a one-hot score so
    that HF's greedy step emits exactly the sampled token.

    Everything stays on the logits' device and is vectorised over the batch: one softmax, one
    cumulative sum and one `searchsorted` per step.  A row's draw depends on its seed, the step and
    its own logits only, never on the other rows of the batch."""

    def __init__(self, seeds: Sequence[int], temperature: float, top_p: float):
        import torch

        self.torch = torch
        self.seeds = torch.tensor([int(s) & (2**63 - 1) for s in seeds], dtype=torch.int64)
        self.temperature = float(temperature)
        self.top_p = float(top_p)
        self.step = 0

    def probabilities(self, scores):
        torch = self.torch
        logits = scores.float()
        if self.temperature <= 0:
            return torch.nn.functional.one_hot(logits.argmax(-1), logits.shape[-1]).float()
        probs = torch.softmax(logits / self.temperature, dim=-1)
        if self.top_p < 1.0:
            sorted_p, order = probs.sort(dim=-1, descending=True)
            # Keep the smallest prefix whose mass reaches top_p (always the top token).
            drop = sorted_p.cumsum(-1) - sorted_p >= self.top_p
            sorted_p = sorted_p.masked_fill(drop, 0.0)
            probs = torch.zeros_like(probs).scatter(-1, order, sorted_p)
        return probs

    def __call__(self, input_ids, scores):
        torch = self.torch
        probs = self.probabilities(scores)
        seeds = self.seeds.to(scores.device)
        u = seeded_uniforms(seeds, self.step)
        self.step += 1
        cdf = probs.to(torch.float64).cumsum(-1)
        target = (u * cdf[:, -1]).unsqueeze(-1)
        # The first index whose cumulative mass exceeds u * total: never a zero-probability token.
        picks = torch.searchsorted(cdf, target, right=True).clamp_(max=probs.shape[-1] - 1)
        out = torch.full_like(scores, float("-inf"))
        out.scatter_(-1, picks, 0.0)
        return out


class StopOnStrings:
    """Per-row stopping once the generated text contains a stop sequence."""

    def __init__(self, tokenizer, stop: Sequence[str], prompt_width: int):
        self.tokenizer = tokenizer
        self.stop = [s for s in stop if s]
        self.width = prompt_width

    def __call__(self, input_ids, scores, **kwargs):
        import torch

        texts = self.tokenizer.batch_decode(input_ids[:, self.width:], skip_special_tokens=True)
        return torch.tensor([any(s in t for s in self.stop) for t in texts], dtype=torch.bool,
                            device=input_ids.device)


@register("vllm")
class VLLMBackend(Backend):
    """vLLM offline inference (GPU); needs the GPU dependency set, requirements-gpu.txt."""

    def __init__(self, path: str, dtype: str = "auto", gpu_memory_utilization: float = 0.9,
                 max_model_len: int | None = None, tensor_parallel_size: int = 1, **_ignored):
        try:
            from vllm import LLM, SamplingParams
        except ImportError as exc:  # pragma: no cover - optional dependency
            raise ImportError("the vllm backend needs a GPU and the GPU dependency set "
                              "(pip install -r requirements-gpu.txt)") from exc
        self.SamplingParams = SamplingParams
        kwargs = dict(model=str(path), dtype=dtype, gpu_memory_utilization=gpu_memory_utilization,
                      tensor_parallel_size=tensor_parallel_size, seed=0,
                      enable_prefix_caching=True)
        if max_model_len:
            kwargs["max_model_len"] = max_model_len
        self.llm = LLM(**kwargs)

    def _run(self, prompts, params):
        outs = self.llm.generate(list(prompts), params, use_tqdm=False)
        res = []
        for o in outs:
            c = o.outputs[0]
            res.append(Generation(c.text, len(c.token_ids)))
        return res

    def sample(self, prompts, seeds, *, temperature, top_p, max_new_tokens, stop=()):
        params = [self.SamplingParams(n=1, temperature=temperature, top_p=top_p,
                                      max_tokens=max_new_tokens, stop=list(stop) or None,
                                      seed=int(s) % (2**63)) for s in seeds]
        return self._run(prompts, params)

    def greedy(self, prompts, *, max_new_tokens, stop=()):
        params = self.SamplingParams(n=1, temperature=0.0, max_tokens=max_new_tokens,
                                     stop=list(stop) or None)
        return self._run(prompts, params)


@register("simulated")
class SimulatedBackend(Backend):
    """Each prompt is a pass probability p; a sample is "1" with probability p, else "0".

    For tests and the sample-size benchmark: the engine's design can be checked against the
    negative-binomial distribution without a model.  `delay` (seconds per call) mimics a device.
    """

    def __init__(self, path=None, delay: float = 0.0, **_ignored):
        self.delay = float(delay)

    def sample(self, prompts, seeds, *, temperature=1.0, top_p=1.0, max_new_tokens=1, stop=()):
        import time

        if self.delay:
            time.sleep(self.delay)
        return [Generation("1" if random.Random(int(s)).random() < float(p) else "0", 1)
                for p, s in zip(prompts, seeds)]

    def greedy(self, prompts, *, max_new_tokens=1, stop=()):
        return [Generation("1" if float(p) >= 0.5 else "0", 1) for p in prompts]
