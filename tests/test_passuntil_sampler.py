"""The vectorised seeded sampler: the right distribution, and a row's draw depends on its seed only."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from obsscale.passuntil.backends import SeededSampler, seeded_uniforms


def test_uniforms_are_uniform_and_step_dependent():
    seeds = torch.arange(100_000, dtype=torch.int64) * 7919 + 2**40
    u = seeded_uniforms(seeds, 3).numpy()
    assert ((u >= 0) & (u < 1)).all()
    counts = np.histogram(u, bins=20, range=(0, 1))[0]
    assert abs(counts / len(u) - 0.05).max() < 0.003
    assert abs(np.corrcoef(u, seeded_uniforms(seeds, 4).numpy())[0, 1]) < 0.02
    assert torch.equal(seeded_uniforms(seeds, 3), seeded_uniforms(seeds, 3))


@pytest.mark.parametrize("top_p", [1.0, 0.75])
def test_draws_follow_the_distribution(top_p):
    p = torch.tensor([0.5, 0.3, 0.15, 0.05, 0.0])
    rows = 40_000
    sampler = SeededSampler(list(range(rows)), temperature=1.0, top_p=top_p)
    out = sampler(None, torch.log(p).repeat(rows, 1))
    assert torch.isinf(out).sum(-1).eq(4).all()  # one token per row
    freq = np.bincount(out.argmax(-1).numpy(), minlength=5) / rows
    want = p.numpy() if top_p == 1.0 else np.array([0.5, 0.3, 0, 0, 0]) / 0.8
    assert np.abs(freq - want).max() < 0.01, freq


def test_a_rows_draw_does_not_depend_on_its_batch():
    torch.manual_seed(0)
    logits = torch.randn(8, 1000)
    seeds = [11, 22, 33, 44, 55, 66, 77, 88]
    together = SeededSampler(seeds, 1.0, 1.0)(None, logits).argmax(-1)
    for i, s in enumerate(seeds):
        alone = SeededSampler([s], 1.0, 1.0)(None, logits[i:i + 1]).argmax(-1)
        assert alone.item() == together[i].item()
    other = SeededSampler([s + 1 for s in seeds], 1.0, 1.0)(None, logits).argmax(-1)
    assert not torch.equal(other, together)
