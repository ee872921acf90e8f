"""The program the sandbox runs: it executes one job and reports to the harness on a channel it owns.

This file runs *inside* the sandbox with the standard library only (the obsscale package is not
visible there): `python runner.py JOB_JSON CHANNEL_FD`.

The verdict never comes from the exit status or from stdout.  The harness (outside the sandbox)
holds the other end of a socket pair whose descriptor this runner inherits.  Only when the tests
have run to their end without raising does the runner send `R`; the harness answers with a fresh
random nonce, the runner echoes it, and only that exchange is a pass.  The nonce exists nowhere in the
sandbox until the tests have run, so exiting early (`exit()`, `sys.exit`, `os._exit`, a signal),
printing any marker, closing stdout or forking is a failure.

Job modes:

- `check` (HumanEval): the tests are compiled first, in their own namespace with a private copy of
  the builtins and private copies of the modules they imported; then prompt + completion run in a
  namespace of their own, and `check(<entry point>)` is called from here (the tests see the prompt's
  names and the entry point, as in HumanEval).  The completion can therefore neither redefine
  `check` nor patch a builtin or module function the tests use.
- `inline` (MBPP style, tests that name the solution's functions): prompt + completion + tests run as
  one program; the tests ran to their end without raising.
- `script`: one program; it ran to its end without raising.
"""

import builtins
import json
import os
import sys
import traceback
import types


def _install_audit_hook():
    """Only where no OS isolation exists (opt-in `unsafe-local`): refuse sockets, process creation
    and writes outside the working directory.  A guard against accidents, not a boundary."""
    root = os.path.realpath(os.getcwd())
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
    refused = ("os.system", "subprocess.Popen", "os.exec", "os.posix_spawn", "os.spawn",
               "os.fork", "os.forkpty", "os.kill", "os.killpg", "os.remove", "os.rename",
               "os.truncate", "os.chmod", "os.rmdir", "shutil.rmtree", "ctypes.dlopen")

    def guard(event, args):
        if event.startswith("socket.") or event in refused:
            raise PermissionError(f"{event} is disabled in the sandbox")
        if event == "open":
            path, mode, flags = (list(args) + [None, None, None])[:3]
            writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
                isinstance(flags, int) and flags & write_flags)
            if writing and isinstance(path, (str, bytes)):
                p = os.path.realpath(os.fsdecode(path))
                if p != "/dev/null" and not (p == root or p.startswith(root + os.sep)):
                    raise PermissionError(f"writing outside the sandbox is refused: {p}")

    sys.addaudithook(guard)


def _private_modules(namespace):
    """Replace every module bound in `namespace` by a shallow copy, so that later patches of the
    shared module object (by the completion) do not reach the tests."""
    for name, value in list(namespace.items()):
        if isinstance(value, types.ModuleType):
            copy = types.ModuleType(value.__name__)
            copy.__dict__.update(value.__dict__)
            namespace[name] = copy


def _run(job, compile_, exec_):
    mode = job["mode"]
    if mode == "script":
        exec_(compile_(job["code"], "program.py", "exec"), {"__name__": "__main__"})
        return
    solution = job["prompt"] + job["completion"]
    if mode == "inline":
        program = f"{solution}\n\n{job['test']}\n"
        exec_(compile_(program, "program.py", "exec"), {"__name__": "__main__"})
        return
    tests = {"__name__": "__tests__", "__builtins__": dict(builtins.__dict__)}
    # The prompt is trusted: it may define helpers the tests use (HumanEval/38, /50 ...).
    exec_(compile_(job["prompt"], "prompt.py", "exec"), tests)
    exec_(compile_(job["test"], "test.py", "exec"), tests)
    _private_modules(tests)
    check = tests["check"]
    program = {"__name__": "__main__"}
    exec_(compile_(solution, "program.py", "exec"), program)
    candidate = program[job["entry_point"]]
    # HumanEval's tests may name the entry point itself (HumanEval/33 compares with it).
    tests[job["entry_point"]] = candidate
    check(candidate)


def main():
    with open(sys.argv[1]) as f:
        job = json.load(f)
    fd = int(sys.argv[2])
    # Everything the report needs is bound here, before any generated code runs.
    write, read, exit_, compile_, exec_ = os.write, os.read, os._exit, compile, exec
    os.set_inheritable(fd, False)
    if job.get("audit_hook"):
        _install_audit_hook()
    sys.argv = ["program.py"]
    try:
        _run(job, compile_, exec_)
    except BaseException as exc:  # SystemExit and KeyboardInterrupt too: the tests did not finish
        try:
            traceback.print_exc()
            name = type(exc).__name__
        except BaseException:
            name = "error"
        try:
            write(fd, b"X" + str(name).encode("ascii", "replace")[:64] + b"\n")
        except BaseException:
            pass
        exit_(1)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:
            pass
    try:
        write(fd, b"R")
        nonce = read(fd, 64)
        write(fd, nonce)
    except BaseException:
        exit_(1)
    exit_(0)


if __name__ == "__main__":
    main()
