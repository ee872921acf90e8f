"""Stage functions of workflow/rules/scores.smk: score tables validated into results/scores/."""

from __future__ import annotations

import logging

from typing import Sequence

import pandas as pd

from obsscale.capability import scores as D
from obsscale.core.io import write_csv

log = logging.getLogger(__name__)


def import_scores(source_csv, metrics: Sequence[str], families_yaml, output_csv) -> pd.DataFrame:
    """Stage function of rule `import_scores`: validate a score table and write it unchanged in
    content (numbers parsed, names stripped) to `results/scores/`."""
    table = D.read_score_table(source_csv, list(metrics), D.load_families(families_yaml))
    write_csv(table, output_csv)
    log.info("%s: %d models validated", source_csv, len(table))
    return table
