"""The ladder's model sheet: the evaluation stage's sheet format (workflow/schemas/models.schema.yaml)
with the compute axes of each trained model — non-embedding parameters N, training tokens D and
training FLOPs 6·N·D — so that the capability and compute analyses see real numbers.

`planned_sheet` computes the sheet from the config alone (every number is fixed by the
architecture and the training settings), which is what the evaluation stage reads when the workflow
is parsed; `trained_sheet` builds it from the records the training jobs wrote, and
`check_sheet_agrees` stops the run if the two differ (a config changed without its sheet).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd

from obsscale.ladder.train import Architecture, non_embedding_parameters

COLUMNS = [
    "model", "name", "family", "params_b", "tokens_t", "flops_1e21", "compute_source", "type",
    "backend", "dtype", "batch_size", "gpus", "mem_gb", "runtime_min",
]
COMPUTE_SOURCE = "trained by the ladder stage (N non-embedding, D = steps x batch x seq_len, C = 6ND)"


def model_dir(ladder: dict, name: str) -> str:
    return f"{ladder.get('output_dir', 'results/ladder')}/models/{name}"


def architecture(model: dict) -> Architecture:
    heads = model.get("num_heads")
    if heads is None:  # the recipe's fixed head width
        heads = int(model["hidden_size"]) // int(model.get("head_dim", 8))
    return Architecture(
        hidden_size=int(model["hidden_size"]),
        num_layers=int(model["num_layers"]),
        num_heads=int(heads),
        intermediate_size=model.get("intermediate_size"),
    )


# Keys of `ladder.training` that set the recipe's scaling rules rather than one run's settings.
RECIPE_KEYS = ("tokens_per_parameter", "min_tokens", "lr_reference_width", "lr_width_exponent")


def model_training(training: dict, model: dict) -> dict:
    """One model's training settings under the ladder's recipe.

    - Data: with `tokens_per_parameter` (and optionally `min_tokens`), the model trains on
      D = max(tokens_per_parameter * N, min_tokens) tokens, rounded up to whole steps of
      batch_size x seq_len; otherwise every model takes `steps`.
    - Learning rate: with `lr_reference_width`, lr = lr * (lr_reference_width / hidden_size) ** e,
      e = `lr_width_exponent` (default 1: the Adam rate of hidden weights falls as 1/width, as in
      muP; 0.5 falls more slowly); otherwise `lr` for all.
    A model entry's own `training` mapping overrides both (documented exceptions only).
    """
    settings = {k: v for k, v in training.items() if k not in RECIPE_KEYS}
    per_token = int(training["batch_size"]) * int(training["seq_len"])
    if training.get("tokens_per_parameter") is not None:
        n = non_embedding_parameters(architecture(model))
        tokens = max(float(training["tokens_per_parameter"]) * n, float(training.get("min_tokens", 0)))
        settings["steps"] = int(-(-int(round(tokens)) // per_token))
    elif "steps" not in training:
        raise ValueError("ladder.training: give `steps` or `tokens_per_parameter`")
    if training.get("lr_reference_width") is not None:
        ratio = (float(training["lr_reference_width"]) / int(model["hidden_size"])) ** float(
            training.get("lr_width_exponent", 1.0))
        settings["lr"] = float(f"{float(training.get('lr', 3e-3)) * ratio:.6g}")
    settings.update(model.get("training") or {})
    return settings


def training_tokens(training: dict) -> int:
    return int(training["steps"]) * int(training["batch_size"]) * int(training["seq_len"])


def _row(ladder: dict, name: str, n: int, d: int) -> dict:
    return {
        "model": model_dir(ladder, name),
        "name": name,
        "family": ladder.get("family", "Ladder"),
        "params_b": f"{n / 1e9:.6g}",
        "tokens_t": f"{d / 1e12:.6g}",
        "flops_1e21": f"{6.0 * n * d / 1e21:.6g}",
        "compute_source": COMPUTE_SOURCE,
        "type": "base",
        "backend": "hf",
        "dtype": "float32",
        "batch_size": str(ladder.get("eval_batch_size", 64)),
        "gpus": "0",
        "mem_gb": "2",
        "runtime_min": "30",
    }


def planned_sheet(ladder: dict) -> pd.DataFrame:
    rows = [
        _row(ladder, m["name"], non_embedding_parameters(architecture(m)),
             training_tokens(model_training(ladder["training"], m)))
        for m in ladder["models"]
    ]
    return pd.DataFrame(rows, columns=COLUMNS)


def trained_sheet(ladder: dict, model_dirs: list[str | os.PathLike]) -> pd.DataFrame:
    rows = []
    for m, folder in zip(ladder["models"], model_dirs):
        record_path = Path(folder) / "obsscale_model.json"
        record = json.loads(record_path.read_text())
        for key in ("non_embedding_parameters", "training_tokens"):
            if key not in record:
                raise ValueError(f"{record_path}: field {key!r} is missing")
        rows.append(_row(ladder, m["name"], int(record["non_embedding_parameters"]), int(record["training_tokens"])))
    return pd.DataFrame(rows, columns=COLUMNS)


def write_sheet(df: pd.DataFrame, path: str | os.PathLike, header: str = "") -> None:
    from obsscale.core.io import write_text

    comment = "".join(f"# {line}\n" for line in header.splitlines())
    write_text(comment + df.to_csv(sep="\t", index=False), path)


def read_sheet(path: str | os.PathLike) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", comment="#", dtype=str, keep_default_na=False)


def check_sheet_agrees(trained: pd.DataFrame, sheet_path: str | os.PathLike) -> None:
    """Raise if the sheet the evaluation reads disagrees with what was trained."""
    sheet = read_sheet(sheet_path).set_index("model")
    for i, row in trained.iterrows():
        if row["model"] not in sheet.index:
            raise ValueError(f"{sheet_path}: no row for trained model {row['model']!r}")
        for field in ("params_b", "tokens_t", "flops_1e21"):
            have = float(sheet.loc[row["model"], field])
            if abs(have - float(row[field])) > 1e-6 * abs(float(row[field])):
                raise ValueError(
                    f"{sheet_path}: row {row['model']}, field {field!r}: {have} but training recorded "
                    f"{row[field]} (regenerate the sheet: python -m obsscale.ladder.sheet CONFIG SHEET)"
                )


def main(argv: list[str] | None = None) -> None:
    """`python -m obsscale.ladder.sheet CONFIG.yaml SHEET.tsv`: write the planned sheet of a config."""
    import sys

    import yaml

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        raise SystemExit("usage: python -m obsscale.ladder.sheet CONFIG.yaml SHEET.tsv")
    with open(args[0]) as f:
        ladder = yaml.safe_load(f)["ladder"]
    write_sheet(
        planned_sheet(ladder), args[1],
        f"Model sheet of the ladder in {args[0]}; written by python -m obsscale.ladder.sheet {args[0]} {args[1]}\n"
        "(the ladder_sheet rule checks it against what training recorded).",
    )


if __name__ == "__main__":
    main()
