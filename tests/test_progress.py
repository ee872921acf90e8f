"""Progress lines in the logs of evaluation and sampling jobs: done / total, rate, ETA; a line at
least every 5 % of the work and at least once a minute (obsscale.core.progress and its use by the
evaluation stage and the PassUntil sampling engine, on the tiny on-disk models)."""

from __future__ import annotations

import logging
import os
import re
import time
from pathlib import Path

import pandas as pd
import pytest

from obsscale.core.progress import Progress, chunk_bounds

ROOT = Path(__file__).resolve().parents[1]
LINE = re.compile(r"^(?P<what>.+): (?P<done>\d+)/(?P<total>\d+) (?P<unit>\w+) \((?P<pct>\d+)%\)")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def parse(lines):
    out = []
    for text in lines:
        m = LINE.match(text)
        assert m, f"not a progress line: {text!r}"
        out.append((m["what"], int(m["done"]), int(m["total"])))
    return out


def assert_every_step(lines, step=0.05, batch=1):
    """Each run of lines (one per `what`) starts at 0, ends at the total, and moves by at most
    `step` of the total or one `batch` of the backend, whichever is more."""
    runs: dict[str, list[tuple[int, int]]] = {}
    for what, done, total in parse(lines):
        runs.setdefault(what, []).append((done, total))
    assert runs
    for what, points in runs.items():
        total = points[0][1]
        assert points[0][0] == 0 and points[-1][0] == total, (what, points)
        gaps = [b[0] - a[0] for a, b in zip(points, points[1:])]
        assert max(gaps) <= max(batch, step * total), (what, points)
    return runs


@pytest.mark.parametrize("total, multiple", [(1, 1), (19, 1), (100, 1), (1000, 1), (1000, 8), (50, 8)])
def test_chunks_cover_the_work_in_pieces_of_at_most_five_percent(total, multiple):
    bounds = chunk_bounds(total, 0.05, multiple)
    assert bounds[0][0] == 0 and bounds[-1][1] == total
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
    sizes = [b - a for a, b in bounds]
    assert max(sizes) <= max(multiple, 0.05 * total, 1)
    assert all(s % multiple == 0 for s in sizes[:-1])


def test_a_line_every_five_percent_with_rate_and_eta():
    clock = FakeClock()
    with Progress("requests", 200, unit="requests", clock=clock, interval=0) as p:
        for _ in range(200):
            clock.now += 0.5
            p.advance(1)
    runs = assert_every_step(p.lines)
    assert len(runs["requests"]) == 21  # the start and every 5 %
    assert "2 requests/s" in p.lines[1] and "ETA 0:01:35" in p.lines[1], p.lines[1]
    assert p.lines[-1].startswith("requests: 200/200 requests (100%)")


def test_a_line_at_least_every_minute_when_work_is_slow():
    clock = FakeClock()
    with Progress("samples", 1000, unit="samples", clock=clock, interval=60) as p:
        for _ in range(10):
            clock.now += 61  # one sample a minute: far less than 5 %
            p.advance(1)
    assert len(p.lines) == 11
    assert p.lines[-1].startswith("samples: 10/1000 samples (1%)")


def test_a_busy_job_with_nothing_finished_still_reports():
    with Progress("requests", 10, interval=0.2) as p:
        time.sleep(1.0)  # one long call: the background thread writes the lines
    assert len(p.lines) >= 3
    assert all(line.startswith("requests: 0/10") for line in p.lines)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    from support.tiny_models import build_tiny_causal_lm

    return str(build_tiny_causal_lm(tmp_path_factory.mktemp("m") / "tiny", hidden_size=16,
                                    num_layers=1, num_heads=2, seed=1))


def test_an_evaluation_logs_progress_of_every_request_kind(tiny_model, tmp_path, monkeypatch, caplog):
    pytest.importorskip("lm_eval")
    from obsscale.evaluation.harness import run_suite
    from obsscale.evaluation.sheet import load_suites

    suite = load_suites(ROOT / "tests/eval/suites.yaml", ROOT / "workflow/schemas/suites.schema.yaml")["tiny"]
    model = {"name": "m", "model": tiny_model, "dtype": "float32", "backend": "hf", "batch_size": "4"}
    monkeypatch.chdir(ROOT)  # the tiny tasks' data paths are relative to the repository root
    with caplog.at_level(logging.INFO, logger="obsscale.evaluation.harness"):
        results = run_suite(model, suite, tmp_path / "out.json", tmp_path / "cache",
                            include_paths=[str(ROOT / "tests/eval_tasks")], limit=8,
                            bootstrap_iters=0, threads=1)
    lines = [r.getMessage() for r in caplog.records if " requests: " in r.getMessage()]
    runs = assert_every_step(lines)
    assert {"loglikelihood requests", "generate_until requests"} <= set(runs)
    assert any("requests/s" in line and "ETA" in line for line in lines)
    assert results["config"]["model"] == "hf"
    assert 0 <= results["results"]["add_mc_en"]["acc,none"] <= 1


def test_sampling_logs_progress_and_draws_the_same_samples(tiny_model, tmp_path, caplog):
    from obsscale.passuntil.backends import make_backend
    from obsscale.stages.passuntil import run_sampling
    from obsscale.passuntil.sampling import pass_until, read_samples
    from obsscale.passuntil.tasks import load_task

    task_yaml = str(ROOT / "config/passuntil/tasks/tiny_patterns.yaml")
    with caplog.at_level(logging.INFO, logger="obsscale.stages.passuntil"):
        run_sampling(task_yaml, "tiny", tiny_model, str(tmp_path / "with.jsonl"), backend="hf",
                     backend_options={"max_batch_size": 4}, progress=True)
    lines = [r.getMessage() for r in caplog.records if " samples (" in r.getMessage()]
    runs = assert_every_step(lines, batch=4)
    assert "greedy decoding" in runs and "sampling call 1" in runs
    assert any(len(points) > 3 for points in runs.values())  # rounds of several pieces
    # Whole batches per piece: the same samples as the engine drawing each round in one call.
    be = make_backend("hf", tiny_model, max_batch_size=4)
    pass_until(load_task(task_yaml), be, "tiny", tmp_path / "plain.jsonl", progress=False)
    _, with_progress, _ = read_samples(tmp_path / "with.jsonl")
    _, plain, _ = read_samples(tmp_path / "plain.jsonl")
    pd.testing.assert_frame_equal(with_progress, plain)
