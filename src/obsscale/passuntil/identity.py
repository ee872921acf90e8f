"""The identity of the model behind a sample log: a log belongs to one model, never to a name.

A log is resumed only when its header carries the same identity: the resolved model path (or hub
id and revision, resolved to a commit where the hub cache holds it), a SHA-256 over the content of
its weight files where they are local, and the backend with its options (dtype included; those
that change only speed or memory left out).
Retraining a model in place, or pointing a series entry at other weights under the same name,
therefore starts a fresh log.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from pathlib import Path

log = logging.getLogger(__name__)

# Files whose content is the model: weights and everything that changes how they are read.
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf", ".ckpt", ".msgpack", ".h5")
MODEL_FILES = ("config.json", "generation_config.json", "tokenizer.json", "tokenizer.model",
               "tokenizer_config.json", "special_tokens_map.json", "vocab.json", "merges.txt")
DEFAULT_DTYPE = {"hf": "float32", "vllm": "auto"}
# Backend options that change only speed or memory, not the model or its sampling distribution.
PERFORMANCE_OPTIONS = {"threads", "max_batch_size", "gpu_memory_utilization"}


def hash_model_files(folder: str | os.PathLike) -> tuple[str, int]:
    """SHA-256 over (relative name, content) of the model's weight and config files, and their
    total size in bytes."""
    folder = Path(folder)
    files = sorted(p for p in folder.rglob("*") if p.is_file() and (
        p.suffix in WEIGHT_SUFFIXES or p.name in MODEL_FILES))
    h = hashlib.sha256()
    total = 0
    for p in files:
        h.update(str(p.relative_to(folder)).encode() + b"\0")
        with open(p, "rb") as f:
            while chunk := f.read(1 << 22):
                h.update(chunk)
                total += len(chunk)
        h.update(b"\0")
    return h.hexdigest(), total


def _hub_snapshot(repo_id: str, revision: str | None) -> Path | None:
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(repo_id, revision=revision, local_files_only=True))
    except Exception:  # not in the local cache (the backend may download it): id + revision only
        return None


def model_identity(model_path: str, backend: str = "hf",
                   backend_options: dict | None = None) -> dict:
    """What a sample log's model is: see the module docstring.  Options that change only speed or
    memory (`PERFORMANCE_OPTIONS`) are left out, so a rerun with more threads resumes."""
    options = {k: v for k, v in (backend_options or {}).items() if k not in PERFORMANCE_OPTIONS}
    revision = options.get("revision")
    ident: dict = {"backend": backend, "options": options,
                   "dtype": str(options.get("dtype", DEFAULT_DTYPE.get(backend, "default")))}
    local = Path(model_path).expanduser()
    t0 = time.monotonic()
    if local.exists():
        ident["path"] = str(local.resolve())
        folder = local if local.is_dir() else None
    else:
        ident["hub_id"] = model_path
        ident["revision"] = revision or "main"
        folder = _hub_snapshot(model_path, revision)
        if folder is not None:
            ident["commit"] = folder.name  # the hub cache names a snapshot by its commit
    if folder is not None:
        ident["weights_sha256"], size = hash_model_files(folder)
        log.info("model identity of %s: weights %s (%.1f MB hashed in %.1f s)", model_path,
                 ident["weights_sha256"][:16], size / 1e6, time.monotonic() - t0)
    elif local.is_file():
        h = hashlib.sha256()
        with open(local, "rb") as f:
            while chunk := f.read(1 << 22):
                h.update(chunk)
        ident["weights_sha256"] = h.hexdigest()
    return ident
