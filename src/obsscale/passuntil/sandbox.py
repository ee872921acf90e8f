"""Run generated code in a throw-away sandbox; the one place where the project executes model output.

Two modes:

- `bwrap` (the default): bubblewrap, run as an unprivileged user (a job running as root drops to
  `nobody` before starting it).  New user, mount, PID, network, IPC and UTS namespaces; a new root
  holding only the system tree (`/usr`, read-only) and the interpreter's own prefix (read-only), a
  fresh `/proc` and minimal `/dev`, size-limited tmpfs `/tmp` and working directory; no environment
  but PATH/HOME/LANG; a new session; `--die-with-parent`; no capabilities; no further user
  namespaces.  Plus rlimits (CPU, address space, processes, file size, no core dumps) and a
  wall-clock limit at which the whole sandbox is killed.  Everything of a sample lives in its own
  PID namespace, so no process of it outlives it.
- `unsafe-local` (explicit opt-in where bubblewrap cannot run): rlimits, a process group killed at
  the end, a temporary working directory and an audit hook; as root additionally an empty network
  namespace and the `nobody` user.  Not a boundary against hostile code; every output of a run that
  used it says so.

Without an opt-in, a machine where bubblewrap cannot run refuses to run generated code
(`SandboxUnavailable`, naming the fix).  Generated code never runs as root.

`isolation(mode)` starts one probe sample in the sandbox and reports the layers that the probe
*observed* (a user namespace, PID 1 being the sandbox's own, only a loopback interface, a read-only
`/usr` ...), so the report cannot claim a layer that is not there.  The verdict of a sample comes from
the runner's channel (see `sandbox_runner.py`), never from the exit status.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from obsscale.core.errors import InputError
from obsscale.passuntil.sandbox_process import (
    NOBODY,
    _converse,
    _count_processes,
    _kill_group,
    _preexec,
    _reason,
    _signal_group,
    _tail,
)

log = logging.getLogger(__name__)

MODES = ("bwrap", "unsafe-local")
DEFAULT_MODE = "bwrap"
RUNNER = Path(__file__).with_name("sandbox_runner.py")
INSIDE_JOB, INSIDE_RUNNER, INSIDE_WORK = "/sandbox/job.json", "/sandbox/runner.py", "/sandbox/work"
BWRAP_FIX = ("install bubblewrap (Debian/Ubuntu: `apt-get install bubblewrap`, Fedora/RHEL: "
             "`dnf install bubblewrap`; on a cluster ask its administrators) and make sure "
             "unprivileged user namespaces are enabled (sysctl user.max_user_namespaces > 0, "
             "kernel.unprivileged_userns_clone = 1, and on Ubuntu 24.04+ "
             "kernel.apparmor_restrict_unprivileged_userns = 0, or an AppArmor profile for bwrap)")
OPT_IN = ("or, knowing that generated code then runs without isolation, opt in with "
          "`sandbox: unsafe-local`")


class SandboxUnavailable(InputError):
    """No sandbox of the requested mode can run on this machine."""


class SandboxError(RuntimeError):
    """The sandbox failed to run a job that it had run before (no verdict on the program)."""


@dataclass(frozen=True)
class SandboxLimits:
    cpu_seconds: int = 5
    wall_seconds: float = 10.0
    memory_bytes: int = 1 << 30
    max_processes: int = 16
    file_bytes: int = 16 << 20
    tmpfs_bytes: int = 64 << 20
    output_bytes: int = 8192


@dataclass
class SandboxResult:
    passed: bool
    reason: str  # passed | error | exited | killed | timeout | sandbox-error
    detail: str
    returncode: int | None
    stdout: str = ""
    stderr: str = ""
    seconds: float = 0.0
    isolation: dict = field(default_factory=dict)


def check_mode(mode: str | None) -> str:
    mode = mode or DEFAULT_MODE
    if mode not in MODES:
        raise InputError(f"sandbox {mode!r} is not known; choose one of {list(MODES)}")
    return mode


@functools.lru_cache(maxsize=None)
def isolation(mode: str = DEFAULT_MODE) -> dict:
    """The sandbox of `mode` on this machine: {mode, layers, python, uid}; the layers are those a
    probe sample observed.  Raises SandboxUnavailable (naming the fix) where it cannot run."""
    mode = check_mode(mode)
    root = os.geteuid() == 0
    candidates = list(dict.fromkeys(
        p for p in (getattr(sys, "_base_executable", None), sys.executable, "/usr/bin/python3")
        if p and os.path.exists(p)))
    bwrap = shutil.which("bwrap")
    if mode == "bwrap" and not bwrap:
        raise SandboxUnavailable(
            f"generated code needs a sandbox and bubblewrap (bwrap) is not installed: {BWRAP_FIX}; "
            f"{OPT_IN}")
    errors = []
    for python in candidates:
        plan = {"mode": mode, "python": os.path.realpath(python), "bwrap": bwrap,
                "uid": NOBODY if root else os.getuid(), "layers": [],
                "bwrap_options": _bwrap_options(bwrap) if mode == "bwrap" else []}
        res = _execute({"mode": "script", "code": _PROBE}, SandboxLimits(wall_seconds=30), plan,
                       quiet=True)
        if res.passed:
            plan["layers"] = _layers(plan, json.loads(res.stdout.strip().splitlines()[-1]))
            log.info("sandbox: %s", {k: v for k, v in plan.items() if k != "bwrap_options"})
            return plan
        errors.append(f"{python}: {(res.stderr.strip() or res.detail)[-300:]}")
    if mode == "bwrap":
        raise SandboxUnavailable(
            "generated code needs a sandbox and bubblewrap cannot start one here ("
            + "; ".join(errors) + f"): {BWRAP_FIX}; {OPT_IN}")
    raise SandboxUnavailable(
        "no interpreter could run the unsafe-local sandbox (" + "; ".join(errors) + "); as root, "
        "generated code runs only as `nobody`, which needs an interpreter that `nobody` can read")


def isolation_layers(mode: str = DEFAULT_MODE) -> list[str]:
    """The observed layers as `mode:layer` strings (for logs and CLI output)."""
    return list(isolation(mode)["layers"])


# Runs in the sandbox at probe time; prints what it sees.  The host compares it with the plan.
_PROBE = r"""
import json, os, resource, socket
out = {"uid": os.getuid(), "pid": os.getpid(), "ppid": os.getppid(), "sid": os.getsid(0)}
try:
    out["uid_map"] = open("/proc/self/uid_map").read().split()
except OSError:
    out["uid_map"] = None
try:
    out["interfaces"] = sorted(n for _, n in socket.if_nameindex())
except OSError:
    out["interfaces"] = None
try:
    open("/usr/.obsscale-probe", "w").close()
    os.remove("/usr/.obsscale-probe")
    out["usr_writable"] = True
except OSError:
    out["usr_writable"] = False
out["cwd_writable"] = os.access(".", os.W_OK)
out["host_visible"] = {p: os.path.exists(p) for p in ("/home", "/root", "/etc/shadow", "/work")}
out["nproc"] = resource.getrlimit(resource.RLIMIT_NPROC)[0]
out["cpu"] = resource.getrlimit(resource.RLIMIT_CPU)[0]
out["as"] = resource.getrlimit(resource.RLIMIT_AS)[0]
print(json.dumps(out))
"""


def _layers(plan: dict, seen: dict) -> list[str]:
    """Layers the probe observed (a layer that is configured but not seen is not reported)."""
    limits = SandboxLimits()
    layers = []
    if plan["mode"] == "bwrap":
        if seen["uid_map"] and seen["uid_map"][:2] != ["0", "0"]:
            layers.append("user-namespace")
        if seen["pid"] <= 3:
            layers.append("pid-namespace")
        if seen["interfaces"] == ["lo"]:
            layers.append("network-namespace")
        if not seen["usr_writable"] and not any(seen["host_visible"].values()):
            layers.append("mount-namespace")
        if seen["cwd_writable"]:
            layers.append("tmpfs-workdir")
        if seen["sid"] in (1, seen["pid"]):  # a session of the sandbox's own
            layers.append("new-session")
        layers.append("die-with-parent")
    else:
        layers += ["process-group", "temporary-workdir", "audit-hook"]
        if seen["interfaces"] == ["lo"]:
            layers.append("network-namespace")
    if seen["uid"] != 0 and plan["uid"] != 0:
        layers.append("unprivileged-uid")
    if seen["cpu"] == limits.cpu_seconds and seen["as"] == limits.memory_bytes and seen["nproc"] > 0:
        layers.append("rlimits")
    return layers


@functools.lru_cache(maxsize=None)
def _bwrap_options(bwrap: str) -> list[str]:
    """Options of this bwrap that older versions lack, used where present."""
    text = subprocess.run([bwrap, "--help"], capture_output=True, text=True).stdout
    return [opt for opt in ("--disable-userns", "--size") if opt in text]


def _bwrap_argv(plan: dict, limits: SandboxLimits, job_fd: int, runner_fd: int, chan: int) -> list:
    argv = [plan["bwrap"], "--unshare-all", "--unshare-user", "--die-with-parent", "--new-session",
            "--cap-drop", "ALL", "--clearenv", "--hostname", "sandbox"]
    if "--disable-userns" in plan["bwrap_options"]:
        argv.append("--disable-userns")
    for key, value in _env(INSIDE_WORK).items():
        argv += ["--setenv", key, value]
    argv += ["--ro-bind", "/usr", "/usr"]
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(top):
            argv += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            argv += ["--ro-bind", top, top]
    for etc in ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/localtime"):
        argv += ["--ro-bind-try", etc, etc]
    prefix = Path(plan["python"]).parent.parent
    # An interpreter outside the system tree (pyenv, conda): its own installation prefix (one that
    # holds lib/python3*), never a top folder or a home directory.
    if (not str(prefix).startswith("/usr") and prefix not in (Path("/"), Path.home())
            and any(prefix.glob("lib/python3*"))):
        argv += ["--ro-bind", str(prefix), str(prefix)]
    argv += ["--proc", "/proc", "--dev", "/dev"]
    for path in ("/tmp", INSIDE_WORK):
        if "--size" in plan["bwrap_options"]:
            argv += ["--size", str(limits.tmpfs_bytes)]
        argv += ["--tmpfs", path]
    argv += ["--ro-bind-data", str(job_fd), INSIDE_JOB, "--ro-bind-data", str(runner_fd),
             INSIDE_RUNNER, "--chdir", INSIDE_WORK, "--",
             plan["python"], "-s", "-B", INSIDE_RUNNER, INSIDE_JOB, str(chan)]
    return argv


def _env(home: str) -> dict:
    return {"PATH": "/usr/bin:/bin", "HOME": home, "TMPDIR": "/tmp" if home == INSIDE_WORK else home,
            "LANG": "C.UTF-8", "PYTHONHASHSEED": "0"}


def run_python(code: str, limits: SandboxLimits = SandboxLimits(),
               sandbox: str = DEFAULT_MODE) -> SandboxResult:
    """Run `code` as one program; passed = it ran to its end without raising."""
    return _execute({"mode": "script", "code": code}, limits, isolation(sandbox))


def run_test(prompt: str, completion: str, test: str, entry_point: str | None,
             limits: SandboxLimits = SandboxLimits(), sandbox: str = DEFAULT_MODE) -> SandboxResult:
    """HumanEval semantics: passed = `check(entry_point)` of `test` ran to its end without raising
    on the function that prompt + completion define.  With no entry point (MBPP style) the tests
    run after prompt + completion in one program and must run to their end."""
    job = {"mode": "check" if entry_point else "inline", "prompt": prompt,
           "completion": completion, "test": test, "entry_point": entry_point}
    return _execute(job, limits, isolation(sandbox))


def _execute(job: dict, limits: SandboxLimits, plan: dict, quiet: bool = False) -> SandboxResult:
    start = time.monotonic()
    host = tempfile.mkdtemp(prefix="obsscale-sandbox-")
    ours, theirs = socket.socketpair()
    proc = None
    try:
        job = {**job, "audit_hook": plan["mode"] == "unsafe-local"}
        Path(host, "job.json").write_text(json.dumps(job))
        shutil.copyfile(RUNNER, Path(host, "runner.py"))
        with open(Path(host, "job.json"), "rb") as jf, open(Path(host, "runner.py"), "rb") as rf, \
                open(Path(host, "stdout"), "wb") as out, open(Path(host, "stderr"), "wb") as err:
            argv, cwd, env, fds = _command(job, limits, plan, host, jf.fileno(), rf.fileno(),
                                           theirs.fileno())
            proc = subprocess.Popen(
                argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                pass_fds=fds, start_new_session=True,
                preexec_fn=_preexec(limits, plan, _count_processes(plan["uid"])))
        theirs.close()
        verdict, timed_out = _converse(ours, proc, start + limits.wall_seconds,
                                       setup_errors=job["mode"] == "check")
        if not timed_out:
            try:
                proc.wait(timeout=1.0)
            except subprocess.TimeoutExpired:
                pass
        _signal_group(proc.pid)
        rc = proc.wait()
        _kill_group(proc.pid)  # whatever of the group is left (unsafe-local: forked children)
        stdout = _tail(Path(host, "stdout"), limits.output_bytes)
        stderr = _tail(Path(host, "stderr"), limits.output_bytes)
        reason, detail = _reason(verdict, timed_out, rc, limits)
        return SandboxResult(reason == "passed", reason, detail, rc, stdout, stderr,
                             time.monotonic() - start, plan)
    except Exception as exc:  # a failure of the sandbox itself: no verdict (sandbox-error)
        (log.debug if quiet else log.warning)("sandbox failure: %r", exc)
        if proc is not None:
            _signal_group(proc.pid)
            proc.wait()
            _kill_group(proc.pid)
        return SandboxResult(False, "sandbox-error", repr(exc), None, "", repr(exc),
                             time.monotonic() - start, plan)
    finally:
        ours.close()
        theirs.close()
        shutil.rmtree(host, ignore_errors=True)


def _command(job, limits, plan, host, job_fd, runner_fd, chan):
    if plan["mode"] == "bwrap":
        argv = _bwrap_argv(plan, limits, job_fd, runner_fd, chan)
        return argv, "/", _env(INSIDE_WORK), (job_fd, runner_fd, chan)
    work = Path(host, "work")
    work.mkdir()
    if os.geteuid() == 0:
        os.chmod(host, 0o711)
        for p in (Path(host, "job.json"), Path(host, "runner.py")):
            os.chmod(p, 0o644)
        os.chown(work, NOBODY, NOBODY)
    argv = [plan["python"], "-s", "-B", str(Path(host, "runner.py")), str(Path(host, "job.json")),
            str(chan)]
    return argv, str(work), _env(str(work)), (chan,)


