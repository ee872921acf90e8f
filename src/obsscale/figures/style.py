"""Figure conventions shared by every stage.

Every figure is written as PNG and PDF beside a CSV of exactly the numbers it plots, so that tests
assert on the CSV (not on pixels) and users can re-plot."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from obsscale.core.io import atomic_path, write_csv  # noqa: E402

# The paper's conventions: seaborn "deep" palette; train blue, test red, preregistered green.
PALETTE = sns.color_palette("deep")
TRAIN_COLOR = PALETTE[0]
TEST_COLOR = PALETTE[3]
HIGHLIGHT_COLOR = PALETTE[2]
FAMILY_MARKERS = ["o", "s", "D", "^", "v", "<", ">", "p", "P", "X", "*", "h", "H", "d", "8"]


def use_style() -> None:
    sns.set_theme(style="whitegrid", palette="deep", font_scale=1.1)
    plt.rcParams.update({"savefig.dpi": 150, "figure.dpi": 100, "axes.titley": 1.0})


def family_style(families: list[str]) -> dict[str, tuple]:
    """(colour, marker) per family, stable in the given (canonical) order."""
    colors = sns.color_palette("husl", max(len(families), 1))
    return {
        fam: (colors[i], FAMILY_MARKERS[i % len(FAMILY_MARKERS)]) for i, fam in enumerate(families)
    }


def save_figure(fig: plt.Figure, data: pd.DataFrame, png: str | os.PathLike,
                pdf: str | os.PathLike | None = None, csv: str | os.PathLike | None = None,
                tight: bool = True) -> None:
    """Write a figure as PNG (and PDF unless `pdf` is None) with the CSV of what it plots beside it.
    Drawing the PDF costs about as much as the PNG (config `figure_formats` can leave it out).
    `tight=False` keeps the figure's own extent (saves a layout pass on figures laid out by hand)."""
    png = Path(png)
    csv = Path(csv) if csv is not None else png.with_suffix(".csv")
    write_csv(data, csv)
    # One layout pass for both formats: a "tight" save would lay the figure out again per file.
    bbox = None
    if tight:
        fig.draw_without_rendering()
        bbox = fig.get_tightbbox().padded(plt.rcParams["savefig.pad_inches"])
    # No creation date in the PDF: the same figure gives the same bytes on every run.
    files = [(png, "png", None)] + ([(Path(pdf), "pdf", {"CreationDate": None})] if pdf is not None else [])
    for path, fmt, meta in files:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=fmt, bbox_inches=bbox, metadata=meta)
    plt.close(fig)


def group_figure_outputs(named: dict[str, str]) -> dict[str, dict[str, str]]:
    """{"<stem>__png": path, ...} (a rule's named outputs) -> {stem: {"png": path, ...}}."""
    grouped: dict[str, dict[str, str]] = {}
    for key, path in named.items():
        stem, sep, ext = key.rpartition("__")
        if sep and ext in ("png", "pdf", "csv"):
            grouped.setdefault(stem, {})[ext] = str(path)
    return grouped
