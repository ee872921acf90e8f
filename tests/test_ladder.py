"""The ladder: corpus determinism and held-out split, tokenizer, resumable training, model sheet."""

from __future__ import annotations

import json

import pytest
import yaml

from obsscale.ladder.corpus import held_out_problems, is_held_out, training_problems, write_corpus
from obsscale.ladder.sheet import planned_sheet, read_sheet, trained_sheet
from obsscale.ladder.tasks import write_held_out_tasks
from obsscale.ladder.train import (
    ALPHABET,
    Architecture,
    TrainingSettings,
    build_char_tokenizer,
    non_embedding_parameters,
    train_model,
)
from obsscale.stages.outputs import ladder_targets

MIXTURE = {
    "add": {"weight": 2, "min_size": 1, "max_size": 3},
    "rev": {"weight": 1, "min_size": 2, "max_size": 5},
    "sort": {"weight": 1, "min_size": 2, "max_size": 5},
    "copy": {"weight": 1, "min_size": 2, "max_size": 5},
}


def test_corpus_is_deterministic_under_its_seed(tmp_path):
    write_corpus(tmp_path / "a.txt", MIXTURE, 500, seed=3)
    write_corpus(tmp_path / "b.txt", MIXTURE, 500, seed=3)
    write_corpus(tmp_path / "c.txt", MIXTURE, 500, seed=4)
    a = (tmp_path / "a.txt").read_text()
    assert a == (tmp_path / "b.txt").read_text()
    assert a != (tmp_path / "c.txt").read_text()
    assert len(a.splitlines()) == 500


def test_corpus_lines_are_correct_problems():
    for p in training_problems(MIXTURE, 300, seed=0):
        prompt, answer = p.line.split("=")
        if p.task == "add":
            a, b = prompt.split("+")
            assert int(a) + int(b) == int(answer)
        elif p.task == "rev":
            assert answer == prompt.removeprefix("rev:")[::-1]
        elif p.task == "sort":
            assert answer == "".join(sorted(prompt.removeprefix("sort:")))


def test_held_out_problems_never_in_training_corpus():
    train = {p.prompt for p in training_problems(MIXTURE, 20000, seed=0)}
    assert not any(is_held_out(p) for p in train)
    held = held_out_problems("add", 2, 30, seed=0) + held_out_problems("rev", 5, 30, seed=0)
    assert len({p.prompt for p in held}) == 60
    assert not train & {p.prompt for p in held}


def test_unknown_task_is_named():
    with pytest.raises(ValueError, match="unknown corpus task 'mul'"):
        list(training_problems({"mul": {"min_size": 1, "max_size": 2}}, 1, seed=0))


def test_held_out_task_files(tmp_path):
    stems = write_held_out_tasks(tmp_path, [{"task": "add", "size": 3}], n=10, seed=0,
                                 passuntil={"r": 1, "K_max": 8})
    assert stems == ["ladder_add3"]
    mc = yaml.safe_load((tmp_path / "lm_eval" / "ladder_add3_mc.yaml").read_text())
    data = mc["dataset_kwargs"]["data_files"]["test"]
    assert data.startswith("/")  # absolute: lm-eval runs from any working directory
    rows = [json.loads(line) for line in open(data)]
    assert len(rows) == 10
    for row in rows:
        a, b = row["prompt"].rstrip("=").split("+")
        assert row["choices"][row["label"]] == str(int(a) + int(b))
        assert len(set(row["choices"])) == 4
    pu = yaml.safe_load((tmp_path / "passuntil" / "ladder_add3.yaml").read_text())
    assert pu["r"] == 1 and pu["K_max"] == 8 and pu["data"]["path"].startswith("/")


def test_char_tokenizer_one_token_per_character():
    tok = build_char_tokenizer()
    line = "123+45=168\nrev:abc=cba\n"
    ids = tok(line)["input_ids"]
    assert len(ids) == len(line)
    assert tok.decode(ids) == line
    assert set(tok.convert_ids_to_tokens(ids)) <= set(ALPHABET)


def test_non_embedding_parameters_match_the_model():
    from obsscale.ladder.train import build_model
    from support.tiny_models import count_parameters

    tok = build_char_tokenizer()
    arch = Architecture(hidden_size=24, num_layers=2, num_heads=2)
    model = build_model(arch, len(tok), 33, tok, seed=0)
    assert count_parameters(model, non_embedding=True) == non_embedding_parameters(arch)


def _weights(path):
    from safetensors.torch import load_file

    return load_file(str(path / "model.safetensors"))


def test_killed_training_resumes_to_the_same_weights(tmp_path):
    corpus = tmp_path / "corpus.txt"
    write_corpus(corpus, MIXTURE, 400, seed=0)
    arch = Architecture(hidden_size=16, num_layers=1, num_heads=2)
    settings = TrainingSettings(steps=12, batch_size=4, seq_len=16, warmup=2, checkpoint_every=4, seed=5)

    straight = train_model(corpus, tmp_path / "straight", tmp_path / "straight.pt", arch, settings, device="cpu")
    assert straight["resumed_from_step"] == 0
    # A run stopped after step 6 leaves its last checkpoint (step 6); the rerun resumes from it.
    train_model(corpus, tmp_path / "resumed", tmp_path / "resumed.pt", arch, settings, device="cpu", stop_after=6)
    assert not (tmp_path / "resumed").exists()
    resumed = train_model(corpus, tmp_path / "resumed", tmp_path / "resumed.pt", arch, settings, device="cpu")
    assert resumed["resumed_from_step"] == 6

    a, b = _weights(tmp_path / "straight"), _weights(tmp_path / "resumed")
    assert a.keys() == b.keys()
    for key in a:
        assert a[key].equal(b[key]), key


def test_checkpoint_of_other_settings_is_ignored(tmp_path):
    corpus = tmp_path / "corpus.txt"
    write_corpus(corpus, MIXTURE, 200, seed=0)
    arch = Architecture(hidden_size=8, num_layers=1, num_heads=1)
    s1 = TrainingSettings(steps=4, batch_size=2, seq_len=16, warmup=1, checkpoint_every=2, seed=0)
    train_model(corpus, tmp_path / "m", tmp_path / "m.pt", arch, s1, device="cpu", stop_after=2)
    s2 = TrainingSettings(steps=4, batch_size=2, seq_len=16, warmup=1, checkpoint_every=2, seed=1)
    record = train_model(corpus, tmp_path / "m", tmp_path / "m.pt", arch, s2, device="cpu")
    assert record["resumed_from_step"] == 0


def test_training_is_deterministic_and_seed_dependent(tmp_path):
    corpus = tmp_path / "corpus.txt"
    write_corpus(corpus, MIXTURE, 300, seed=0)
    arch = Architecture(hidden_size=8, num_layers=1, num_heads=1)
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        s = TrainingSettings(steps=5, batch_size=2, seq_len=16, warmup=1, seed=seed)
        train_model(corpus, tmp_path / name, tmp_path / f"{name}.pt", arch, s, device="cpu")
    a, b, c = (_weights(tmp_path / n) for n in "abc")
    assert all(a[k].equal(b[k]) for k in a)
    assert not all(a[k].equal(c[k]) for k in a)


def test_answer_loss_masks_everything_but_the_answers(tmp_path):
    """`loss: answers` trains on the answer characters and the newline that ends them, nothing else."""
    import numpy as np

    from obsscale.ladder.train import LineWindows

    tok = build_char_tokenizer()
    text = "12+34=46\nrev:ab=ba\n1+1=2\n"
    ids = np.array([tok.convert_tokens_to_ids(ch) for ch in text])
    windows = LineWindows(ids, tok.convert_tokens_to_ids("\n"), len(ids) - 1, 0,
                          equals_id=tok.convert_tokens_to_ids("="))
    mask = windows.answer_mask(ids[None])[0]
    assert "".join(ch if m else "." for ch, m in zip(text[1:], mask)) == ".....46\n.......ba\n....2\n"

    corpus = tmp_path / "corpus.txt"
    write_corpus(corpus, MIXTURE, 300, seed=0)
    arch = Architecture(hidden_size=8, num_layers=1, num_heads=1)
    for loss in ("all", "answers"):
        s = TrainingSettings(steps=3, batch_size=2, seq_len=16, warmup=1, seed=0, loss=loss)
        assert train_model(corpus, tmp_path / loss, tmp_path / f"{loss}.pt", arch, s,
                           device="cpu")["settings"]["loss"] == loss
    a, b = _weights(tmp_path / "all"), _weights(tmp_path / "answers")
    assert not all(a[k].equal(b[k]) for k in a)
    with pytest.raises(ValueError, match="ladder.training.loss: 'answer' is not one of all, answers"):
        TrainingSettings(steps=1, loss="answer")


def _ladder(path):
    with open(path) as f:
        return yaml.safe_load(f)


@pytest.mark.parametrize("config", ["config/ladder.yaml", "tests/ladder/config.yaml"])
def test_committed_sheet_and_series_match_the_config(config):
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    cfg = _ladder(root / config)
    ladder = cfg["ladder"]
    planned = planned_sheet(ladder)
    assert planned["model"].tolist() == [f"results/ladder/models/{m['name']}" for m in ladder["models"]]
    evaluation = cfg.get("evaluation")
    if evaluation and evaluation.get("enabled"):
        committed = read_sheet(root / evaluation["model_sheet"])
        for field in ("model", "params_b", "tokens_t", "flops_1e21", "family"):
            assert committed[field].tolist() == planned[field].tolist(), field
    passuntil = cfg.get("passuntil")
    if passuntil and passuntil.get("enabled"):
        for series in passuntil["series"].values():
            n = {m["name"]: float(m["N"]) for m in series["models"]}
            for m, p in zip(ladder["models"], planned["params_b"]):
                assert n[m["name"]] == pytest.approx(float(p) * 1e9), m["name"]


def test_trained_sheet_reads_the_records(tmp_path):
    ladder = _ladder("tests/ladder/config.yaml")["ladder"]
    dirs = []
    for m in ladder["models"]:
        d = tmp_path / m["name"]
        d.mkdir()
        (d / "obsscale_model.json").write_text(json.dumps({"non_embedding_parameters": 1000, "training_tokens": 2000}))
        dirs.append(d)
    sheet = trained_sheet(ladder, dirs)
    assert sheet["flops_1e21"].astype(float).tolist() == pytest.approx([6 * 1000 * 2000 / 1e21] * len(dirs))
    (dirs[0] / "obsscale_model.json").write_text("{}")
    with pytest.raises(ValueError, match="non_embedding_parameters"):
        trained_sheet(ladder, dirs)


def test_ladder_targets_only_when_enabled():
    assert ladder_targets({}) == []
    assert ladder_targets({"ladder": {"enabled": False, "models": [{"name": "x"}]}}) == []
    targets = ladder_targets({"ladder": {"enabled": True, "models": [{"name": "x"}]}})
    assert targets == ["results/ladder/models/x", "results/ladder/models.tsv"]


def test_ladder_families_are_the_shipped_ones_plus_the_ladder():
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    shipped = yaml.safe_load((root / "resources/obsscaling/families.yaml").read_text())
    ladder = yaml.safe_load((root / "config/ladder/families.yaml").read_text())
    assert set(ladder) == set(shipped)
    for key, value in shipped.items():
        if key == "misc_base_families":
            assert ladder[key] == ["Ladder", *value]
        elif key == "benchmark_floors":
            assert {k: v for k, v in ladder[key].items() if k in value} == value
            assert all(k.endswith(("-Gen", "-MC")) for k in set(ladder[key]) - set(value))
        else:
            assert ladder[key] == value, key


def test_recipe_scales_tokens_and_learning_rate_with_size():
    from obsscale.ladder.sheet import architecture, model_training

    training = {"tokens_per_parameter": 20, "min_tokens": 100_000, "batch_size": 4, "seq_len": 10,
                "lr": 2e-3, "lr_reference_width": 64, "warmup": 1}
    small = {"name": "s", "hidden_size": 8, "num_layers": 2}
    big = {"name": "b", "hidden_size": 128, "num_layers": 2}
    n_big = non_embedding_parameters(architecture(big))
    assert architecture(big).num_heads == 16  # heads of width 8 by default
    s, b = model_training(training, small), model_training(training, big)
    assert s["steps"] == 2500  # the floor: 100 000 tokens / 40 per step (20 N = 41 760)
    assert b["steps"] == -(-20 * n_big // 40)  # 20 tokens per parameter, whole steps
    assert b["lr"] == pytest.approx(1e-3) and s["lr"] == pytest.approx(1.6e-2)
    assert not set(s) & {"tokens_per_parameter", "min_tokens", "lr_reference_width"}
    assert model_training(training, {**big, "training": {"lr": 5e-4}})["lr"] == 5e-4
    sqrt_rule = {**training, "lr_width_exponent": 0.5}
    assert model_training(sqrt_rule, big)["lr"] == pytest.approx(2e-3 / 2 ** 0.5, rel=1e-5)  # 6 digits
    assert model_training(sqrt_rule, small)["lr"] == pytest.approx(2e-3 * 8 ** 0.5, rel=1e-5)
    assert "lr_width_exponent" not in model_training(sqrt_rule, small)
    with pytest.raises(ValueError, match="steps"):
        model_training({"batch_size": 4, "seq_len": 10}, small)
