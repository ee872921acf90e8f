"""`obsscale predict SCORES.csv`: predict every frozen law's target for the models of a score table,
with a band (docs/predict.md).  Calls `obsscale.laws.predict.predict`, as the workflow's rule does."""

from __future__ import annotations

import argparse
import logging
import sys

from obsscale.commands import add_score_table_parser

DEFAULT_LAWS = "results/prereg"
DEFAULT_FAMILIES = "resources/obsscaling/families.yaml"


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = add_score_table_parser(
        subparsers, "predict",
        help="predict every frozen law's target, with a band, for the models of a score table",
        description="Place each model of SCORES.csv (score-table layout: Model, optional Model Family, "
                    "compute columns, benchmark columns in [0, 1]; e.g. an evaluation stage's scores_wide.csv) "
                    "in each frozen law's capability space and predict the law's target with its 95 %% band, "
                    "from the frozen laws alone (no refit, no training data).",
        epilog="Without --out, a summary of the main laws is printed; --out FILE writes every law's row "
               "(columns in docs/predict.md); --out - writes that CSV to stdout.",
        scores_help="the models' benchmark scores")
    p.add_argument("--laws", default=DEFAULT_LAWS, metavar="PATH",
                   help=f"a frozen-law record or a folder of them (default: {DEFAULT_LAWS})")
    p.add_argument("--law", action="append", metavar="NAME", dest="select",
                   help="only this law (experiment, experiment/target or experiment/target/predictors); repeatable")
    p.add_argument("--main", action="store_true", help="only each experiment's main predictor set")
    p.add_argument("--families", default=None, metavar="YAML",
                   help=f"families file to report unknown families against (default: {DEFAULT_FAMILIES} if present)")
    p.add_argument("--out", metavar="FILE", help="write the prediction table as CSV ('-' for stdout)")
    p.add_argument("--quiet", action="store_true", help="no notes on stderr")
    p.set_defaults(func=run)
    return p


def _known_families(path: str | None) -> list[str] | None:
    from pathlib import Path

    if path is None:
        if not Path(DEFAULT_FAMILIES).exists():
            return None
        path = DEFAULT_FAMILIES
    from obsscale.capability.scores import load_families

    return list(load_families(path).known_families)


def run(args: argparse.Namespace) -> int:
    from obsscale.core.io import write_csv
    from obsscale.laws.frozen import load_frozen
    from obsscale.laws.predict import predict, summarise

    if not args.quiet:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("obsscale predict: note: %(message)s"))
        logger = logging.getLogger("obsscale.laws.predict")
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    laws = load_frozen(args.laws, select=args.select, main_only=args.main)
    table = predict(args.scores, laws, known_families=_known_families(args.families), strict=bool(args.select))
    if args.out == "-":
        table.to_csv(sys.stdout, index=False)
    elif args.out:
        write_csv(table, args.out)
        print(summarise(table))
        print(f"{len(table)} rows ({table['model'].nunique()} model(s) × {table['law'].nunique()} law(s)) "
              f"written to {args.out}")
    else:
        print(summarise(table))
    return 0
