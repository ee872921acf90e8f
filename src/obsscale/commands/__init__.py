"""The `obsscale` command's subcommands (see `obsscale.cli`): each module adds one parser."""

from __future__ import annotations

import argparse


def add_score_table_parser(subparsers, name: str, *, help: str, description: str, scores_help: str,
                           epilog: str | None = None) -> argparse.ArgumentParser:
    """A subcommand's parser whose first argument is a score table `SCORES.csv`."""
    p = subparsers.add_parser(name, help=help, description=description, epilog=epilog)
    p.add_argument("scores", metavar="SCORES.csv", help=scores_help)
    return p
