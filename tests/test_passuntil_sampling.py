"""The sampling engine: exact negative-binomial stopping, resume equals uninterrupted, seeding."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pandas as pd
import pytest

from obsscale.passuntil.backends import SimulatedBackend, make_backend
from obsscale.passuntil.checkers import get_checker
from obsscale.passuntil.estimators import instance_estimates
from obsscale.passuntil.sampling import counts_from_log, derive_seed, pass_until, read_samples
from obsscale.passuntil.tasks import PassUntilTask, load_task

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def simulated_task(ps, r=2, K_max=500, batch=None, name="sim"):
    return PassUntilTask(
        name=name, instances=[{"id": f"i{j}", "p": p} for j, p in enumerate(ps)], prompt="{p}",
        checker_spec={"name": "regex", "pattern": "^1$"}, r=r, K_max=K_max,
        batch=batch or {"initial": 4, "growth": 2, "max": 64}, seed=3, greedy=False,
    )


def sample_records(path):
    _, s, _ = read_samples(path)
    return s.sort_values(["instance", "attempt"]).reset_index(drop=True)


def test_stopping_rule_is_applied_in_sample_order(tmp_path):
    task = simulated_task([0.3, 0.05, 0.001], r=2, K_max=300)
    summary = pass_until(task, SimulatedBackend(), "m", tmp_path / "log.jsonl", progress=False)
    s = sample_records(tmp_path / "log.jsonl")
    for inst, g in s.groupby("instance"):
        g = g.sort_values("attempt")
        assert list(g["attempt"]) == list(range(len(g)))  # no gaps, no repeats
        counted = g[g["counted"]]
        assert counted["attempt"].max() == len(counted) - 1  # the counted ones come first
        if counted["passed"].sum() == 2:
            assert counted["passed"].iloc[-1]  # K ends at the r-th pass
            assert not g[~g["counted"]]["attempt"].lt(len(counted)).any()
        else:
            assert len(counted) == 300  # censored at K_max
    assert summary["instances"] == 3 and summary["censored"] >= 0


def test_engine_estimates_are_unbiased():
    # 400 instances at p = 0.05 through the engine (rounds, shared batches, surplus discarded).
    import tempfile

    p, r = 0.05, 3
    with tempfile.TemporaryDirectory() as d:
        task = simulated_task([p] * 400, r=r, K_max=100_000, batch={"initial": 8, "growth": 2, "max": 256})
        pass_until(task, SimulatedBackend(), "m", f"{d}/log.jsonl", progress=False)
        counts = counts_from_log(f"{d}/log.jsonl")
    est = instance_estimates(counts, r=r, K_max=100_000)
    assert not est["censored"].any()
    se = est["p_hat"].std() / np.sqrt(len(est))
    assert abs(est["p_hat"].mean() - p) < 4 * se


@pytest.mark.parametrize("crash_after", [1, 7, 23])
def test_resume_after_crash_equals_uninterrupted(tmp_path, crash_after):
    task = simulated_task([0.3, 0.1, 0.02, 0.2], r=2, K_max=200)
    full = tmp_path / "full.jsonl"
    pass_until(task, SimulatedBackend(), "m", full, progress=False)
    part = tmp_path / "part.jsonl"
    with pytest.raises(RuntimeError, match="injected crash"):
        pass_until(task, SimulatedBackend(), "m", part, progress=False,
                   crash_after_records=crash_after)
    pass_until(task, SimulatedBackend(), "m", part, progress=False)
    pd.testing.assert_frame_equal(sample_records(full), sample_records(part))


def test_resume_after_sigkill_equals_uninterrupted(tmp_path):
    task_yaml = tmp_path / "task.yaml"
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps({"id": f"i{j}", "p": p}) + "\n"
                            for j, p in enumerate([0.02, 0.05, 0.01])))
    task_yaml.write_text(textwrap.dedent(f"""\
        name: sim
        data: {{path: {data}}}
        prompt: "{{p}}"
        checker: {{name: regex, pattern: "^1$"}}
        r: 2
        K_max: 400
        batch: {{initial: 4, growth: 1.5, max: 16}}
        greedy: false
        """))
    part = tmp_path / "part.jsonl"
    code = textwrap.dedent(f"""\
        from obsscale.passuntil.backends import SimulatedBackend
        from obsscale.passuntil.sampling import pass_until
        from obsscale.passuntil.tasks import load_task
        pass_until(load_task({str(task_yaml)!r}), SimulatedBackend(delay=0.05), "m", {str(part)!r},
                   progress=False)
        """)
    proc = subprocess.Popen([sys.executable, "-c", code], env={**os.environ})
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if part.exists() and sum(1 for _ in open(part)) > 40:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    lines = open(part).read().splitlines()
    assert not any('"type": "done"' in ln for ln in lines), "the job finished before the kill"
    task = load_task(task_yaml)
    pass_until(task, SimulatedBackend(), "m", part, progress=False)
    full = tmp_path / "full.jsonl"
    pass_until(task, SimulatedBackend(), "m", full, progress=False)
    pd.testing.assert_frame_equal(sample_records(full), sample_records(part))


def test_a_log_of_another_design_is_set_aside_not_resumed(tmp_path, caplog):
    task = simulated_task([0.5], r=2, K_max=50)
    log = tmp_path / "log.jsonl"
    pass_until(task, SimulatedBackend(), "m", log, progress=False)
    old = log.read_text()
    other = simulated_task([0.5], r=3, K_max=50)
    with caplog.at_level("WARNING"):
        pass_until(other, SimulatedBackend(), "m", log, progress=False)
    assert "another design" in caplog.text and "starts afresh" in caplog.text
    aside = list(tmp_path.glob("log.stale-*.jsonl"))
    assert len(aside) == 1 and aside[0].read_text() == old
    header, _, _ = read_samples(log)
    assert header["design"]["r"] == 3


def test_a_log_of_another_model_identity_is_set_aside(tmp_path):
    task = simulated_task([0.5], r=2, K_max=50)
    log = tmp_path / "log.jsonl"
    pass_until(task, SimulatedBackend(), "m", log, progress=False, identity={"weights": "a"})
    pass_until(task, SimulatedBackend(), "m", log, progress=False, identity={"weights": "a"})
    assert list(tmp_path.glob("*.stale-*")) == []  # the same identity resumes
    pass_until(task, SimulatedBackend(), "m", log, progress=False, identity={"weights": "b"})
    assert len(list(tmp_path.glob("log.stale-*.jsonl"))) == 1
    assert read_samples(log)[0]["identity"] == {"weights": "b"}


def test_seeds_depend_on_every_part():
    base = derive_seed("m", "t", "i", 0)
    assert base == derive_seed("m", "t", "i", 0)
    others = {derive_seed("m2", "t", "i", 0), derive_seed("m", "t2", "i", 0),
              derive_seed("m", "t", "i2", 0), derive_seed("m", "t", "i", 1)}
    assert base not in others and len(others) == 4


def test_unknown_checker_suggests_a_name():
    with pytest.raises(KeyError, match="did you mean 'exact_match'"):
        get_checker("exact_mach")


def test_task_yaml_errors_name_the_file_and_field(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ndata: {path: nothing.jsonl}\nchecker: regex\nbatchsize: 3\n")
    with pytest.raises(ValueError, match=r"bad.yaml: line 4, field .batchsize.: unknown field"):
        load_task(bad)
    data = tmp_path / "d.jsonl"
    data.write_text('{"id": 1, "q": "a"}\n{"q": "b"}\n')
    bad.write_text(f"name: x\ndata: {{path: {data}}}\nchecker: regex\n")
    with pytest.raises(ValueError, match=r"d.jsonl: line 2: field 'id'"):
        load_task(bad)


# ---- HF backend: per-sample seeding on a tiny model -------------------------------------------

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    from support.tiny_models import build_tiny_causal_lm

    return str(build_tiny_causal_lm(tmp_path_factory.mktemp("m") / "tiny", hidden_size=16,
                                    num_layers=1, num_heads=2, seed=1))


def test_hf_sample_is_a_function_of_its_seed(tiny_model):
    be = make_backend("hf", tiny_model, max_batch_size=8)
    kw = dict(temperature=1.0, top_p=1.0, max_new_tokens=4)
    alone = be.sample(["Write a word:"] * 3, [11, 12, 13], **kw)
    mixed = be.sample(["Write a word:", "x", "Write a word:", "A much longer prompt here: 1 2 3",
                       "Write a word:"], [11, 99, 12, 98, 13], **kw)
    assert [g.text for g in alone] == [mixed[0].text, mixed[2].text, mixed[4].text]
    again = be.sample(["Write a word:"] * 3, [11, 12, 13], **kw)
    assert [g.text for g in alone] == [g.text for g in again]
    assert len({g.text for g in be.sample(["Write a word:"] * 8, range(8), **kw)}) > 1


def test_hf_resume_after_crash_equals_uninterrupted(tiny_model, tmp_path):
    task = load_task("config/passuntil/tasks/tiny_patterns.yaml")
    be = make_backend("hf", tiny_model, max_batch_size=32)
    pass_until(task, be, "tiny", tmp_path / "full.jsonl", progress=False)
    with pytest.raises(RuntimeError):
        pass_until(task, be, "tiny", tmp_path / "part.jsonl", progress=False, crash_after_records=13)
    pass_until(task, be, "tiny", tmp_path / "part.jsonl", progress=False)
    full, part = sample_records(tmp_path / "full.jsonl"), sample_records(tmp_path / "part.jsonl")
    pd.testing.assert_frame_equal(full, part)
    assert full["passed"].any()  # the tiny task is passable by a random model
    _, _, greedy = read_samples(tmp_path / "full.jsonl")
    assert len(greedy) == len(task.instances)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="vLLM backend needs a CUDA GPU")
@pytest.mark.gpu
def test_vllm_backend_seeding(tiny_model):
    pytest.importorskip("vllm", reason="vllm is not installed")
    be = make_backend("vllm", tiny_model, gpu_memory_utilization=0.3)
    kw = dict(temperature=1.0, top_p=1.0, max_new_tokens=4)
    a = be.sample(["Write a word:"] * 3, [1, 2, 3], **kw)
    b = be.sample(["x", "Write a word:", "Write a word:", "Write a word:"], [0, 1, 2, 3], **kw)
    assert [g.text for g in a] == [g.text for g in b[1:]]


def test_lm_eval_task_definition_is_reused(tmp_path, monkeypatch):
    """Prompt, target, stop sequences and the regex filter come from the lm-eval task object."""
    import types

    class FakeTask:
        eval_docs = [{"input": "Today is 03/12/2021. Tomorrow?", "target": "03/13/2021"}]
        config = types.SimpleNamespace(
            generation_kwargs={"until": ["Q:", "\n\n"]},
            filter_list=[{"name": "strict", "filter": [
                {"function": "regex", "regex_pattern": r"answer is (\d\d/\d\d/\d{4})"},
                {"function": "take_first"}]}])

        def doc_to_text(self, doc):
            return f"Q: {doc['input']}\nA:"

        def doc_to_target(self, doc):
            return doc["target"]

    class FakeManager:
        def __init__(self, *args, **kwargs):
            pass

        def load_task_or_group(self, names):
            return {names[0]: FakeTask()}

    fake = types.ModuleType("lm_eval.tasks")
    fake.TaskManager = FakeManager
    monkeypatch.setitem(sys.modules, "lm_eval.tasks", fake)
    yml = tmp_path / "t.yaml"
    yml.write_text("name: date_lm\ndata: {lm_eval: fake_date}\nchecker: exact_match\n")
    task = load_task(yml)
    inst = task.instances[0]
    assert task.render(inst) == "Q: Today is 03/12/2021. Tomorrow?\nA:"
    assert task.stop == ["Q:", "\n\n"]
    assert task.checker(inst, " so the answer is 03/13/2021.")
    assert not task.checker(inst, " 03/13/2021")  # the task's own extraction pattern applies


def test_rerun_of_a_finished_log_draws_nothing(tmp_path):
    task = simulated_task([0.3, 0.1], r=2, K_max=100)
    log = tmp_path / "log.jsonl"
    first = pass_until(task, SimulatedBackend(), "m", log, progress=False)
    before = log.read_text()
    again = pass_until(task, SimulatedBackend(), "m", log, progress=False)
    assert log.read_text() == before
    assert again["samples"] == first["samples"]


def test_replacing_a_models_weights_under_its_name_gives_new_samples(tmp_path):
    """Retrain (here: rebuild with another seed) the model at the same path, under the same name:
    the old samples are set aside and every sample is drawn again from the new weights."""
    from support.tiny_models import build_tiny_causal_lm

    from obsscale.stages.passuntil import run_sampling

    model = tmp_path / "models" / "tiny"
    build_tiny_causal_lm(model, hidden_size=16, num_layers=1, num_heads=2, seed=1)
    out = tmp_path / "samples" / "tiny.jsonl"
    task = "config/passuntil/tasks/tiny_patterns.yaml"
    opts = {"max_batch_size": 32, "threads": 1}
    run_sampling(task, "tiny", str(model), str(out), backend_options=opts, progress=False)
    first_header, first, _ = read_samples(out)
    run_sampling(task, "tiny", str(model), str(out), backend_options={**opts, "threads": 2},
                 progress=False)  # same weights, other thread count: resumed, nothing drawn
    assert list(out.parent.glob(".work/*.stale-*")) == []
    build_tiny_causal_lm(model, hidden_size=16, num_layers=1, num_heads=2, seed=2)
    run_sampling(task, "tiny", str(model), str(out), backend_options=opts, progress=False)
    second_header, second, _ = read_samples(out)
    assert len(list(out.parent.glob(".work/tiny.stale-*.jsonl"))) == 1
    ident1, ident2 = first_header["identity"], second_header["identity"]
    assert ident1["path"] == ident2["path"] and ident1["weights_sha256"] != ident2["weights_sha256"]
    merged = first.merge(second, on=["instance", "attempt"], suffixes=("_old", "_new"))
    assert len(merged) and (merged["text_old"] != merged["text_new"]).any()
