"""Run generated code in a throw-away, resource-limited process.

Every layer is there because generated code is untrusted and a sampling job draws up to K_max
programs per instance; one bad program must cost one failed sample, never the job:

- a separate process in its own session (process group), killed as a group at the wall-clock limit;
- RLIMIT_CPU (busy loops), RLIMIT_AS (memory bombs), RLIMIT_NPROC (fork bombs), RLIMIT_FSIZE and
  RLIMIT_CORE=0 (disk);
- a fresh temporary working directory, deleted afterwards, and a minimal environment;
- no network: a new, empty network namespace (unshare(CLONE_NEWNET)) where the job runs as root;
  otherwise an audit hook installed in the child before the program runs refuses socket creation.
  The audit hook is always installed as a second layer; `isolation()` says which layers are active;
- as root the child drops to the unprivileged `nobody` user (root ignores RLIMIT_NPROC, and
  `nobody` cannot write outside the sandbox); the audit hook also refuses opening files for writing
  outside the working directory, which is the containment when the job does not run as root.

Audit hooks are a guard against accidents and naive code, not against a determined attacker with
ctypes; the namespace and the user switch are the real boundaries where available.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

CLONE_NEWNET = 0x40000000
NOBODY = 65534

# Installed in the child before the program: refuses sockets and writes outside the working dir.
_BOOTSTRAP = r'''
import os, sys
_root = os.path.realpath(os.getcwd())
_WRITE = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
def _guard(event, args):
    if event.startswith("socket.") :
        raise PermissionError("network access is disabled in the sandbox")
    if event == "open":
        path, mode, flags = (list(args) + [None, None, None])[:3]
        writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
            isinstance(flags, int) and flags & _WRITE)
        if writing and isinstance(path, (str, bytes)):
            p = os.path.realpath(os.fsdecode(path))
            if p != "/dev/null" and not (p == _root or p.startswith(_root + os.sep)):
                raise PermissionError(f"writing outside the sandbox is refused: {p}")
    if event in ("os.system", "subprocess.Popen", "os.exec", "os.posix_spawn", "os.spawn",
                 "os.fork", "os.forkpty"):
        raise PermissionError(f"{event} is disabled in the sandbox")
sys.addaudithook(_guard)
del _guard
sys.argv = ["program.py"]
with open("program.py") as _f:
    _src = _f.read()
exec(compile(_src, "program.py", "exec"), {"__name__": "__main__"})
'''


@dataclass(frozen=True)
class SandboxLimits:
    cpu_seconds: int = 5
    wall_seconds: float = 10.0
    memory_bytes: int = 1 << 30
    max_processes: int = 16
    file_bytes: int = 16 << 20
    output_bytes: int = 8192


@dataclass
class SandboxResult:
    passed: bool
    reason: str  # ok | error | timeout | sandbox-error
    returncode: int | None
    stdout: str = ""
    stderr: str = ""
    seconds: float = 0.0
    isolation: dict = field(default_factory=dict)


def _libc():
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:  # pragma: no cover - no libc
        return None


def _child_setup(limits: SandboxLimits, netns: bool, drop_user: bool, nproc_base: int):
    libc = _libc() if netns else None

    def setup():  # runs in the forked child before exec: keep it to plain system calls
        if netns and libc is not None and libc.unshare(CLONE_NEWNET) != 0:
            os._exit(97)  # the namespace was promised: never run the program without it
        resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds + 1))
        resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
        resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_bytes, limits.file_bytes))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        n = nproc_base + limits.max_processes
        resource.setrlimit(resource.RLIMIT_NPROC, (n, n))
        if drop_user:
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)

    return setup


def _count_processes(uid: int) -> int:
    n = 0
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                if os.stat(f"/proc/{pid}").st_uid == uid:
                    n += 1
            except OSError:
                pass
    return n


@functools.lru_cache(maxsize=1)
def isolation() -> dict:
    """Which isolation layers this machine gives: network namespace, user switch, audit hook."""
    root = os.geteuid() == 0
    out = {"netns": False, "drop_user": False, "audit_hook": True, "python": sys.executable}
    if root:
        out["netns"] = _probe(sys.executable, netns=True, drop_user=False)
        # `nobody` may not reach the job's interpreter (e.g. one under /root): fall back to the
        # system interpreter, which is enough for generated programs (standard library only).
        for python in dict.fromkeys([sys.executable, shutil.which("python3", path="/usr/bin:/bin")]):
            if python and _probe(python, netns=False, drop_user=True):
                out["drop_user"], out["python"] = True, python
                break
    out["network"] = "netns" if out["netns"] else "audit-hook"
    log.info("sandbox isolation: %s", out)
    return out


def _probe(python: str, netns: bool, drop_user: bool) -> bool:
    try:
        return subprocess.run(
            [python, "-I", "-B", "-c", "pass"],
            preexec_fn=_child_setup(SandboxLimits(), netns, drop_user,
                                    _count_processes(NOBODY) if drop_user else 0),
            cwd="/", env={"PATH": "/usr/bin:/bin"}, capture_output=True, timeout=30,
        ).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def _kill_group(pgid: int, settle: float = 3.0) -> None:
    """SIGKILL the process group and wait (briefly) until it is gone, so that nothing of a sample
    outlives it; orphans of the group are reaped by init."""
    deadline = time.monotonic() + settle
    while True:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            return
        if time.monotonic() > deadline:
            log.warning("sandbox process group %d still present after SIGKILL", pgid)
            return
        time.sleep(0.05)


def _tail(path: str, limit: int) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - limit))
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def run_python(code: str, limits: SandboxLimits = SandboxLimits(), python: str | None = None,
               os_isolation: bool = True) -> SandboxResult:
    """Run `code` as a Python program in the sandbox; passed = exited 0 within the limits.

    `os_isolation=False` keeps only the layers every user has (rlimits, process group, temporary
    directory, audit hook), as on a machine where the job does not run as root.
    """
    iso = dict(isolation())
    if not os_isolation:
        iso.update(netns=False, drop_user=False, network="audit-hook", python=sys.executable)
    start = time.monotonic()
    workdir = tempfile.mkdtemp(prefix="obsscale-sandbox-")
    try:
        with open(os.path.join(workdir, "program.py"), "w") as f:
            f.write(code)
        if iso["drop_user"]:
            for p in (workdir, os.path.join(workdir, "program.py")):
                os.chown(p, NOBODY, NOBODY)
        uid = NOBODY if iso["drop_user"] else os.getuid()
        # Non-root users own other processes already; RLIMIT_NPROC counts them all.
        nproc_base = _count_processes(uid)
        env = {"PATH": "/usr/bin:/bin", "HOME": workdir, "TMPDIR": workdir, "LANG": "C.UTF-8"}
        out_path, err_path = os.path.join(workdir, ".stdout"), os.path.join(workdir, ".stderr")
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            if iso["drop_user"]:
                os.chown(out_path, NOBODY, NOBODY)
                os.chown(err_path, NOBODY, NOBODY)
            try:
                proc = subprocess.Popen(
                    [python or iso["python"], "-I", "-B", "-c", _BOOTSTRAP],
                    cwd=workdir, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                    start_new_session=True, close_fds=True,
                    preexec_fn=_child_setup(limits, iso["netns"], iso["drop_user"], nproc_base),
                )
            except (OSError, subprocess.SubprocessError) as exc:
                return SandboxResult(False, "sandbox-error", None, stderr=str(exc),
                                     seconds=time.monotonic() - start, isolation=iso)
            timed_out = False
            try:
                rc = proc.wait(timeout=limits.wall_seconds)
            except subprocess.TimeoutExpired:
                timed_out = True
            finally:
                # The whole group goes, including children a fork bomb left behind.
                _kill_group(proc.pid)
            if timed_out:
                rc = proc.wait()
        stdout, stderr = _tail(out_path, limits.output_bytes), _tail(err_path, limits.output_bytes)
        if timed_out:
            reason = "timeout"
        elif rc == 97 and iso["netns"]:
            reason = "sandbox-error"
        else:
            reason = "ok" if rc == 0 else "error"
        return SandboxResult(reason == "ok", reason, rc, stdout, stderr,
                             time.monotonic() - start, iso)
    except Exception as exc:  # any failure of the sandbox itself is a failed sample
        log.warning("sandbox failure: %s", exc)
        return SandboxResult(False, "sandbox-error", None, stderr=repr(exc),
                             seconds=time.monotonic() - start, isolation=iso)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
