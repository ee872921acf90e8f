"""`obsscale laws`: list the frozen laws (Table C.1's three forms) of a folder of frozen-law records."""

from __future__ import annotations

import argparse
import json

from obsscale.commands.predict import DEFAULT_LAWS


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "laws", help="list the frozen laws and their forms (Table C.1)",
        description="List each frozen main law in Table C.1's three forms: in log10 equivalent FLOPs of "
                    "its reference family, in principal components, and as weights on the benchmark metrics; "
                    "with --all, every predictor set.")
    p.add_argument("--laws", default=DEFAULT_LAWS, metavar="PATH",
                   help=f"a frozen-law record or a folder of them (default: {DEFAULT_LAWS})")
    p.add_argument("--format", choices=("table", "json"), default="table", help="output format (default: table)")
    p.add_argument("--all", action="store_true", help="every predictor set, not only the main one")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from obsscale.laws.frozen import law_forms, load_frozen

    forms = law_forms(load_frozen(args.laws, main_only=not args.all))
    if args.format == "json":
        print(json.dumps(forms, indent=2, ensure_ascii=False))
        return 0
    for f in forms:
        print(f"{f['law']}  [{f['status']}, band: {f['band_method']}, frozen {f['frozen']}]")
        for key, label in (("form_equivalent_flops", "equivalent FLOPs"), ("form_pcs", "PCs"),
                           ("form_metric_weights", "metrics"), ("form_compute", "log10 compute")):
            if f.get(key):
                print(f"  {label:<17} {f[key]}")
    return 0
