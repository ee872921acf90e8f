"""Train one small decoder-only transformer of the ladder on the synthetic corpus.

Character-level tokens: the tasks are digit- and letter-wise algorithms, which a byte-pair
vocabulary would hide inside multi-character tokens.  Training is deterministic under a seed: the
batch of step `s` is a pure function of (seed, s), and a checkpoint (weights, optimizer, step, RNG
state) written atomically every `checkpoint_every` steps lets a killed run resume and end with the
same weights as an uninterrupted one.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from obsscale.ladder.model import (  # noqa: F401  (re-exported for the ladder's users)
    SPECIAL_TOKENS,
    Architecture,
    as_transformers_tokenizer,
    build_model,
    non_embedding_parameters,
)

log = logging.getLogger(__name__)

# Every character any task writes; fixed (not read from the corpus) so that every model of a
# ladder, and the held-out tasks, share one vocabulary.
ALPHABET = "\n 0123456789+=:abcdefghijklmnopqrstuvwxyz"


LOSSES = ("all", "answers")


@dataclass(frozen=True)
class TrainingSettings:
    steps: int
    batch_size: int = 32
    seq_len: int = 64
    lr: float = 3e-3
    warmup: int = 100
    min_lr_ratio: float = 0.1
    weight_decay: float = 0.0
    seed: int = 0
    checkpoint_every: int = 200
    log_every: int = 100
    # "all": next-token loss on every character; "answers": only on the answer of each problem
    # (the characters after '=' through the newline), as a model is taught a task: the prompts'
    # operands and letters are random draws with nothing to learn, and their gradient is noise.
    loss: str = "all"

    def __post_init__(self):
        if self.loss not in LOSSES:
            raise ValueError(f"ladder.training.loss: {self.loss!r} is not one of {', '.join(LOSSES)}")


def build_char_tokenizer(alphabet: str = ALPHABET):
    """A character-level tokenizer (one token per character) in the `tokenizers` format.

    Saved with `save_pretrained`, it loads through `AutoTokenizer` like any hub tokenizer, so lm-eval
    and the PassUntil backends need nothing special.
    """
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers

    vocab = {tok: i for i, tok in enumerate(SPECIAL_TOKENS)}
    for ch in alphabet:
        vocab.setdefault(ch, len(vocab))
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex("[\\s\\S]"), behavior="isolated")
    tok.decoder = decoders.Fuse()
    return as_transformers_tokenizer(tok, clean_up_tokenization_spaces=False)


class LineWindows:
    """Training windows of `seq_len + 1` tokens that start at a line start of the corpus.

    Starting at a line start matches how the held-out tasks prompt the model (a problem at the start
    of the context).  The windows of step `s` depend on (seed, s) only.
    """

    def __init__(self, token_ids: np.ndarray, newline_id: int, seq_len: int, seed: int, equals_id: int | None = None):
        self.ids = token_ids
        self.newline_id = newline_id
        self.equals_id = equals_id
        self.seq_len = seq_len
        self.seed = seed
        starts = np.concatenate([[0], np.flatnonzero(token_ids == newline_id) + 1])
        self.starts = starts[starts + seq_len + 1 <= len(token_ids)]
        if len(self.starts) == 0:
            raise ValueError(f"ladder: corpus of {len(token_ids)} tokens is shorter than one window")

    def batch(self, step: int, batch_size: int) -> np.ndarray:
        rng = np.random.default_rng([self.seed, step])
        starts = self.starts[rng.integers(0, len(self.starts), size=batch_size)]
        return np.stack([self.ids[s : s + self.seq_len + 1] for s in starts])

    def answer_mask(self, batch: np.ndarray) -> np.ndarray:
        """Which targets of `batch` (its tokens 1..seq_len) are answer characters.

        A target is part of an answer when, among the tokens before it, the last '=' or newline is
        an '=': the answer's characters and the newline that ends it.  Windows start at a line start,
        so a window's first tokens are a prompt.
        """
        if self.equals_id is None:
            raise ValueError("ladder: answer-only loss needs the '=' token id")
        inputs = batch[:, :-1]
        marker = np.where(inputs == self.equals_id, 1, np.where(inputs == self.newline_id, 0, -1))
        position = np.where(marker >= 0, np.arange(inputs.shape[1]), -1)
        last = np.maximum.accumulate(position, axis=1)
        return (last >= 0) & (np.take_along_axis(marker, np.maximum(last, 0), axis=1) == 1)


def learning_rate(step: int, s: TrainingSettings) -> float:
    """Linear warm-up then cosine decay to `min_lr_ratio` of the peak."""
    if step < s.warmup:
        return s.lr * (step + 1) / s.warmup
    progress = (step - s.warmup) / max(1, s.steps - s.warmup)
    return s.lr * (s.min_lr_ratio + (1 - s.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


def _fingerprint(arch: Architecture, settings: TrainingSettings, corpus_sha: str) -> str:
    payload = json.dumps({"arch": asdict(arch), "settings": asdict(settings), "corpus": corpus_sha}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


def _save_checkpoint(path: Path, state: dict) -> None:
    import torch

    from obsscale.core.io import atomic_path

    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def _resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def _corpus_windows(corpus, tokenizer, settings: TrainingSettings) -> LineWindows:
    """The corpus as character token ids, cut into line-start training windows."""
    text = Path(corpus).read_text()
    unknown = sorted(set(text) - set(ALPHABET))
    if unknown:
        raise ValueError(f"ladder: corpus {corpus} has characters outside the vocabulary: {unknown!r}")
    lookup = np.zeros(128, dtype=np.int64)
    for ch in ALPHABET:
        lookup[ord(ch)] = tokenizer.convert_tokens_to_ids(ch)
    ids = lookup[np.frombuffer(text.encode("ascii"), dtype=np.uint8)]
    return LineWindows(ids, tokenizer.convert_tokens_to_ids("\n"), settings.seq_len, settings.seed,
                       equals_id=tokenizer.convert_tokens_to_ids("="))


def _build_optimizer(model, settings: TrainingSettings):
    """AdamW with weight decay on the matrices only (not on embeddings, norms or biases)."""
    import torch

    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (decay if p.ndim >= 2 and "embed" not in name else no_decay).append(p)
    return torch.optim.AdamW(
        [{"params": decay, "weight_decay": settings.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=settings.lr,
        betas=(0.9, 0.98),
    )


def _resume(checkpoint: Path, model, optimizer, fingerprint: str, device: str) -> int:
    """Load `checkpoint` into model, optimizer and RNG when its fingerprint matches; the step to start at."""
    import torch

    if not checkpoint.exists():
        return 0
    state = torch.load(checkpoint, map_location=device, weights_only=False)
    if state.get("fingerprint") != fingerprint:
        log.warning("ignoring checkpoint %s: written by other settings or another corpus", checkpoint)
        return 0
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    torch.set_rng_state(state["torch_rng"])
    start_step = int(state["step"])
    log.info("resumed from %s at step %d", checkpoint, start_step)
    return start_step


def _train_step(model, optimizer, windows: LineWindows, step: int, settings: TrainingSettings, device: str) -> float:
    """One optimizer step on the batch of `step`; its loss."""
    import torch

    for group in optimizer.param_groups:
        group["lr"] = learning_rate(step, settings)
    tokens = windows.batch(step, settings.batch_size)
    batch = torch.from_numpy(tokens).to(device)
    logits = model(input_ids=batch[:, :-1]).logits
    targets = batch[:, 1:]
    if settings.loss == "answers":
        targets = targets.masked_fill(~torch.from_numpy(windows.answer_mask(tokens)).to(device), -100)
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    return loss.item()


def _run_steps(model, optimizer, windows, settings, *, start_step, last, checkpoint, fingerprint, device) -> float:
    """Steps `start_step` to `last`, logging and checkpointing on schedule; the seconds they took."""
    import torch

    model.train()
    t0 = time.perf_counter()
    loss_sum, loss_n = 0.0, 0
    for step in range(start_step, last):
        loss_sum += _train_step(model, optimizer, windows, step, settings, device)
        loss_n += 1
        done = step + 1
        if done % settings.log_every == 0 or done == last:
            elapsed = time.perf_counter() - t0
            rate = (done - start_step) / elapsed
            log.info(
                "step %d/%d  loss %.4f  %.1f steps/s  eta %.0f s",
                done, settings.steps, loss_sum / loss_n, rate, (settings.steps - done) / rate,
            )
            loss_sum, loss_n = 0.0, 0
        if done % settings.checkpoint_every == 0 or done == last:
            _save_checkpoint(
                checkpoint,
                {
                    "fingerprint": fingerprint,
                    "step": done,
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "torch_rng": torch.get_rng_state(),
                },
            )
    return time.perf_counter() - t0


def _write_model(model, tokenizer, record: dict, output_dir: Path) -> None:
    """Write model, tokenizer and record beside `output_dir`, then move them into place whole."""
    import shutil

    from obsscale.core.io import write_json

    tmp_dir = output_dir.with_name(f".{output_dir.name}.tmp")
    if tmp_dir.exists():
        shutil.rmtree(tmp_dir)
    model.cpu().save_pretrained(tmp_dir)
    tokenizer.save_pretrained(tmp_dir)
    write_json(record, tmp_dir / "obsscale_model.json")
    if output_dir.exists():
        shutil.rmtree(output_dir)
    os.replace(tmp_dir, output_dir)


def _model_record(model, arch: Architecture, settings: TrainingSettings, *, train_seconds: float,
                  start_step: int, device: str, threads: int, corpus) -> dict:
    """What `obsscale_model.json` says of a finished model: N, D, FLOPs, timings, settings."""
    from obsscale.core.io import file_sha256

    n_params = non_embedding_parameters(arch)
    tokens = settings.steps * settings.batch_size * settings.seq_len
    return {
        "non_embedding_parameters": n_params,
        "parameters": sum(p.numel() for p in model.parameters()),
        "training_tokens": tokens,
        "training_flops": 6.0 * n_params * tokens,
        "train_seconds_this_run": round(train_seconds, 2),
        "resumed_from_step": start_step,
        "architecture": asdict(arch),
        "settings": asdict(settings),
        "device": device,
        "threads": threads,
        "corpus_sha256": file_sha256(corpus),
    }


def train_model(
    corpus: str | os.PathLike,
    output_dir: str | os.PathLike,
    checkpoint: str | os.PathLike,
    arch: Architecture,
    settings: TrainingSettings,
    *,
    threads: int = 1,
    device: str = "auto",
    stop_after: int | None = None,
) -> dict:
    """Train one model and write it with `save_pretrained` (plus tokenizer) to `output_dir`.

    `checkpoint` is resumed from when it exists and was written by the same settings and corpus.
    `stop_after` ends the run after that many steps without writing the model (to test resumption).
    Returns the record written to `output_dir/obsscale_model.json` (N, D, FLOPs, timings).
    """
    import torch

    from obsscale.core.io import file_sha256

    torch.set_num_threads(max(1, int(threads)))
    torch.use_deterministic_algorithms(True, warn_only=True)
    device = _resolve_device(device)
    checkpoint = Path(checkpoint)

    tokenizer = build_char_tokenizer()
    windows = _corpus_windows(corpus, tokenizer, settings)
    model = build_model(arch, len(tokenizer), settings.seq_len + 1, tokenizer, settings.seed).to(device)
    optimizer = _build_optimizer(model, settings)
    fingerprint = _fingerprint(arch, settings, file_sha256(corpus))
    start_step = _resume(checkpoint, model, optimizer, fingerprint, device)

    n_params = non_embedding_parameters(arch)
    tokens_per_step = settings.batch_size * settings.seq_len
    last = settings.steps if stop_after is None else min(settings.steps, stop_after)
    log.info(
        "training N=%d non-embedding parameters, %d steps x %d tokens on %s (%d threads)",
        n_params, settings.steps, tokens_per_step, device, threads,
    )
    train_seconds = _run_steps(
        model, optimizer, windows, settings,
        start_step=start_step, last=last, checkpoint=checkpoint, fingerprint=fingerprint, device=device,
    )
    if last < settings.steps:
        log.info("stopped after step %d as asked; checkpoint %s", last, checkpoint)
        return {"step": last}

    record = _model_record(model, arch, settings, train_seconds=train_seconds, start_step=start_step,
                           device=device, threads=threads, corpus=corpus)
    _write_model(model, tokenizer, record, Path(output_dir))
    return record
