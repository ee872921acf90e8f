"""The model and tokenizer builders the ladder trains, shared with the tests' tiny models.

One Llama-architecture builder (`build_model`) and one tokenizer wrapper (`as_transformers_tokenizer`)
so that every model the project makes on disk loads through `from_pretrained` like any checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass

SPECIAL_TOKENS = ("<unk>", "<s>", "</s>")


def as_transformers_tokenizer(tok, **options):
    """Wrap a `tokenizers.Tokenizer` with the project's special tokens (padding with </s>), so that
    `save_pretrained` / `AutoTokenizer` round-trip it like any hub tokenizer."""
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="</s>",
        **options,
    )


@dataclass(frozen=True)
class Architecture:
    hidden_size: int
    num_layers: int
    num_heads: int
    intermediate_size: int | None = None

    @property
    def ffn(self) -> int:
        return self.intermediate_size or 4 * self.hidden_size


def build_model(arch: Architecture, vocab_size: int, max_positions: int, tokenizer, seed: int):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=arch.hidden_size,
        intermediate_size=arch.ffn,
        num_hidden_layers=arch.num_layers,
        num_attention_heads=arch.num_heads,
        num_key_value_heads=arch.num_heads,
        max_position_embeddings=max_positions,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    return LlamaForCausalLM(config)


def non_embedding_parameters(arch: Architecture) -> int:
    """N of the scaling-law literature: attention, MLP and norm weights (no embeddings, no head)."""
    d, f, L = arch.hidden_size, arch.ffn, arch.num_layers
    return L * (4 * d * d + 3 * d * f + 2 * d) + d
