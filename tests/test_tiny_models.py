import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from support.tiny_models import build_tiny_causal_lm, count_parameters  # noqa: E402


def test_tiny_model_round_trips_through_from_pretrained(tmp_path):
    path = build_tiny_causal_lm(tmp_path / "m", hidden_size=16, num_layers=1, num_heads=2, seed=3)
    tok = transformers.AutoTokenizer.from_pretrained(path)
    model = transformers.AutoModelForCausalLM.from_pretrained(path)
    ids = tok("What is 2 + 2? Answer:", return_tensors="pt").input_ids
    assert tok.decode(ids[0], skip_special_tokens=True) == "What is 2 + 2? Answer:"
    out = model.generate(ids, max_new_tokens=4, do_sample=False, pad_token_id=tok.pad_token_id)
    assert out.shape[1] == ids.shape[1] + 4
    assert count_parameters(model, non_embedding=True) < count_parameters(model)


def test_seed_fixes_the_weights(tmp_path):
    a = build_tiny_causal_lm(tmp_path / "a", hidden_size=16, num_layers=1, num_heads=2, seed=1)
    b = build_tiny_causal_lm(tmp_path / "b", hidden_size=16, num_layers=1, num_heads=2, seed=1)
    ma = transformers.AutoModelForCausalLM.from_pretrained(a)
    mb = transformers.AutoModelForCausalLM.from_pretrained(b)
    for pa, pb in zip(ma.parameters(), mb.parameters()):
        assert torch.equal(pa, pb)
