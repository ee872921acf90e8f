"""`obsscale validate SCORES.csv`: the score-table checks, with file/line/column errors."""

from __future__ import annotations

import argparse

from obsscale.commands import add_score_table_parser
from obsscale.commands.predict import DEFAULT_FAMILIES


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = add_score_table_parser(
        subparsers, "validate", help="check a score table (file, line and column of the first problem)",
        description="Check a score table as the workflow's import does: Model and Model Family present, "
                    "model names unique, compute columns non-negative numbers, metric columns numbers in "
                    "[0, 1] (empty cells allowed, imputed later).  Families are checked against --families "
                    "when given; the metrics are --metrics, else every column besides the metadata.",
        scores_help="the score table")
    p.add_argument("--metrics", nargs="+", metavar="NAME", help="metric columns to check (default: all others)")
    p.add_argument("--families", metavar="YAML",
                   help=f"families file whose families the table must use (e.g. {DEFAULT_FAMILIES})")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from obsscale.capability.scores import validate_score_table

    report = validate_score_table(args.scores, args.metrics, args.families)
    print(report)
    return 0
