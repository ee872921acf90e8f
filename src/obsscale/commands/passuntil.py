"""`obsscale passuntil check TASK_YAML INSTANCE_ID COMPLETION_FILE`: one verdict by hand.

Runs the task's own checker on one completion, through the same code path as sampling (for code
tasks: the same sandbox), and prints one JSON line
`{"passed": ..., "reason": ..., "detail": ..., "isolation": [...], "sandbox": ...}`.  The exit status
is 0 whether or not the completion passed; bad input (task file, instance id, a sandbox that cannot
run) exits 2 with one line.
"""

from __future__ import annotations

import argparse
import json
import sys


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("passuntil", help="PassUntil tools (check one completion)",
                                   description="PassUntil tools.")
    sub = parser.add_subparsers(dest="passuntil_command", metavar="SUBCOMMAND", required=True)
    check = sub.add_parser(
        "check", help="run a task's checker on one completion and print the verdict as JSON",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    check.add_argument("task_yaml", metavar="TASK_YAML", help="the task file")
    check.add_argument("instance_id", metavar="INSTANCE_ID", help="the instance's id")
    check.add_argument("completion_file", metavar="COMPLETION_FILE",
                       help="file holding the completion exactly as the model would give it; - reads stdin")
    check.add_argument("--sandbox", choices=["bwrap", "unsafe-local"], default=None,
                       help="override the checker's sandbox mode (unsafe-local: no isolation)")
    check.add_argument("--output", action="store_true",
                       help="also print the program's stdout and stderr tails in the JSON line")
    check.set_defaults(func=run_check, command="passuntil check")


def run_check(args) -> int:
    from obsscale.core.errors import InputError
    from obsscale.passuntil.tasks import load_task

    task = load_task(args.task_yaml)
    instance = task.instance(args.instance_id)
    if args.completion_file == "-":
        completion = sys.stdin.read()
    else:
        try:
            with open(args.completion_file, encoding="utf-8") as f:
                completion = f.read()
        except OSError as exc:
            raise InputError(f"{args.completion_file}: {exc.strerror}") from None
    checker = task.checker
    iso = checker.prepare(args.sandbox)
    out: dict = {"task": task.name, "instance": instance["id"]}
    if hasattr(checker, "run"):
        res = checker.run(instance, completion)
        out.update(passed=res.passed, reason=res.reason, detail=res.detail,
                   isolation=list(iso["layers"]), sandbox=iso["mode"],
                   seconds=round(res.seconds, 3))
        if args.output:
            out.update(stdout=res.stdout, stderr=res.stderr)
    else:
        passed = bool(checker(instance, completion))
        out.update(passed=passed, reason="passed" if passed else "no match",
                   detail=f"checker {checker.name}", isolation=[], sandbox=None)
    print(json.dumps(out))
    return 0
