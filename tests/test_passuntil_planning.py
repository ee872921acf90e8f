"""Planning from a pilot round: drawn samples as the engine draws them, and the design table."""

from __future__ import annotations

import numpy as np

from obsscale.passuntil.backends import SimulatedBackend
from obsscale.passuntil.planning import drawn_samples, fit_population, plan, resolution_floor
from obsscale.passuntil.sampling import pass_until, read_samples
from obsscale.passuntil.tasks import PassUntilTask


def test_drawn_samples_equal_what_the_engine_draws(tmp_path):
    batch = {"initial": 4, "growth": 2, "max": 32}
    task = PassUntilTask(name="sim", instances=[{"id": f"i{k}", "p": p} for k, p in
                                                enumerate([0.3, 0.05, 0.01, 0.002, 0.0005])],
                         prompt="{p}", checker_spec={"name": "regex", "pattern": "^1$"}, r=2,
                         K_max=300, batch=batch, greedy=False)
    log = tmp_path / "m.jsonl"
    pass_until(task, SimulatedBackend(), "m", log, progress=False)
    _, samples, _ = read_samples(log)
    counted = samples[samples["counted"]].groupby("instance").agg(K=("passed", "size"), s=("passed", "sum"))
    drawn = samples.groupby("instance").size()
    expect = drawn_samples(counted["K"], counted["s"], 2, 300, batch)
    assert list(expect) == list(drawn.loc[counted.index])


def test_population_fit_and_plan_track_the_truth():
    rng = np.random.default_rng(0)
    p = 1 / (1 + np.exp(-rng.normal(-6.0, 1.0, 400)))
    n0 = np.full(400, 64)
    mu, sigma = fit_population(n0, rng.binomial(64, p))  # most instances never pass in the pilot
    assert abs(mu + 6.0) < 0.5 and abs(sigma - 1.0) < 0.4
    table = plan(n0[:40], rng.binomial(64, p[:40]), r_values=(2, 4), K_max_values=(1000, 100_000),
                 replicates=200)
    big = table[table["K_max"] == 100_000].set_index("r")
    small = table[table["K_max"] == 1000].set_index("r")
    assert (small["censored_fraction"] > big["censored_fraction"]).all()
    assert big.loc[4, "expected_samples"] > big.loc[2, "expected_samples"]
    assert big.loc[4, "rel_error_q90"] < big.loc[2, "rel_error_q90"]
    assert abs(resolution_floor(2, 10_000) * 10_000 - 1.68) < 0.01  # median of Gamma(2): ~1.68
