"""`obsscale prefetch`: download a run's models and datasets before its jobs run offline."""

from __future__ import annotations

import argparse
from pathlib import Path

NAME = "prefetch"


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        NAME,
        help="download the hub models and datasets a run needs (for offline compute nodes)",
        description=(
            "Download every hub model of the evaluation sheet and the PassUntil series into the "
            "hub cache (HF_HOME) and load every lm-eval and PassUntil task once (the datasets "
            "cache), so that the jobs can run with HF_HUB_OFFLINE=1. Run it in the workflow's "
            "directory with the run's config files (docs/cluster.md)."
        ),
    )
    parser.add_argument("--configfile", nargs="*", default=[], type=Path,
                        help="config files merged into config/config.yaml, as given to snakemake")
    parser.add_argument("--directory", type=Path, default=Path("."),
                        help="the workflow's directory (default: the current one)")
    parser.add_argument("--dry-run", action="store_true", help="list what would be fetched")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import os

    from obsscale.stages.prefetch import fetch_list, load_run_config, prefetch

    root = args.directory.resolve()
    configfiles = [p if p.is_absolute() else Path.cwd() / p for p in args.configfile]
    os.chdir(root)  # the config's paths are relative to the workflow's directory
    todo = fetch_list(load_run_config(configfiles, root), root)
    if args.dry_run:
        for repo, revision in todo.models:
            print(f"model {repo} (revision {revision or 'default'})")
        for task in todo.lm_eval_tasks:
            print(f"lm-eval task {task}")
        for path in todo.passuntil_tasks:
            print(f"PassUntil task {path}")
        return 0
    prefetch(todo)
    return 0
