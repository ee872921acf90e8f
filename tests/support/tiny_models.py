"""Tiny causal language models built on disk, with no hub access.

The evaluation and PassUntil stages load models through the same code that users point at real
checkpoints (`from_pretrained` on a folder); tests and the CPU examples build their models here: a
byte-level BPE tokenizer trained locally with the `tokenizers` library and a randomly initialised
Llama-architecture model, both written with `save_pretrained`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterable

from obsscale.ladder.model import SPECIAL_TOKENS, as_transformers_tokenizer

DEFAULT_CORPUS = (
    "The quick brown fox jumps over the lazy dog. 0 1 2 3 4 5 6 7 8 9 + - * = ?",
    "Question: what is 12 plus 30? Answer: 42.",
    "def add(a, b):\n    return a + b\n",
    "A B C D yes no true false. The answer is",
)


def build_tokenizer(corpus: Iterable[str] = DEFAULT_CORPUS, vocab_size: int = 300):
    """A byte-level BPE tokenizer (any text is encodable) trained on `corpus`."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(list(corpus), trainer=trainer)
    return as_transformers_tokenizer(tok)


def build_tiny_causal_lm(
    path: str | os.PathLike,
    *,
    hidden_size: int = 32,
    num_layers: int = 2,
    num_heads: int = 4,
    intermediate_size: int | None = None,
    max_position_embeddings: int = 512,
    seed: int = 0,
    tokenizer=None,
    corpus: Iterable[str] = DEFAULT_CORPUS,
    vocab_size: int = 300,
) -> Path:
    """Write a randomly initialised Llama-architecture model and its tokenizer to `path`.

    Returns the folder; `transformers.AutoModelForCausalLM.from_pretrained(path)` and lm-eval's
    `hf` model (`pretrained=<path>`) load it as they load any checkpoint.
    """
    from obsscale.ladder.model import Architecture, build_model

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    if tokenizer is None:
        tokenizer = build_tokenizer(corpus, vocab_size=vocab_size)
    arch = Architecture(hidden_size, num_layers, num_heads, intermediate_size)
    model = build_model(arch, len(tokenizer), max_position_embeddings, tokenizer, seed)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    (path / "obsscale_model.json").write_text(
        json.dumps({"parameters": count_parameters(model), "seed": seed}, indent=2) + "\n"
    )
    return path


def count_parameters(model, non_embedding: bool = False) -> int:
    """Parameters of a model; `non_embedding=True` leaves out the token embedding and output head."""
    total = sum(p.numel() for p in model.parameters())
    if non_embedding:
        total -= model.get_input_embeddings().weight.numel()
        out = model.get_output_embeddings()
        if out is not None and out.weight is not model.get_input_embeddings().weight:
            total -= out.weight.numel()
    return total
