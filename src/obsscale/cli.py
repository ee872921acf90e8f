"""The `obsscale` command: the library's stage functions for a user at a shell, without Snakemake.

Each command lives in `obsscale.commands.<name>` and defines `add_parser(subparsers)`, which adds its
parser and sets `func` (called with the parsed arguments, returning the exit status).  Bad input
(any `InputError`) is printed as one line and exits with status 2; nothing partial is written.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from obsscale import __version__
from obsscale.core.errors import InputError

# One module per command group, in the order `obsscale --help` lists them.
COMMAND_MODULES: tuple[str, ...] = (
    "obsscale.commands.predict",
    "obsscale.commands.laws",
    "obsscale.commands.validate",
    "obsscale.commands.passuntil",
    "obsscale.commands.prefetch",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="obsscale",
        description="Observational scaling laws and PassUntil task scaling laws.",
    )
    parser.add_argument("--version", action="version", version=f"obsscale {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except InputError as exc:
        print(f"obsscale {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
