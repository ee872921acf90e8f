"""The process side of the sandbox: limits set before exec, the verdict channel, cleaning up.

Used by `sandbox.py` only.  The harness end of the channel: the runner sends `S` when it starts,
`R` when the tests ran to their end; the harness then sends a fresh nonce that the runner echoes.
"""

from __future__ import annotations

import logging
import os
import resource
import secrets
import select
import signal
import socket
import subprocess
import time
from pathlib import Path

log = logging.getLogger("obsscale.passuntil.sandbox")

NOBODY = 65534
CLONE_NEWNET = 0x40000000


def _count_processes(uid: int) -> int:
    n = 0
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                n += os.stat(f"/proc/{pid}").st_uid == uid
            except OSError:
                pass
    return n


def _preexec(limits, plan: dict, nproc_base: int):
    drop = os.geteuid() == 0
    netns = drop and plan["mode"] == "unsafe-local"
    libc = None
    if netns:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)

    def setup():  # in the forked child before exec: plain system calls only
        if netns and libc.unshare(CLONE_NEWNET) != 0:
            os._exit(97)
        resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds + 1))
        resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
        resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_bytes, limits.file_bytes))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        n = nproc_base + limits.max_processes
        resource.setrlimit(resource.RLIMIT_NPROC, (n, n))
        if drop:  # generated code never runs as root
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            if os.getuid() == 0 or os.geteuid() == 0:
                os._exit(98)

    return setup


def _converse(sock: socket.socket, proc: subprocess.Popen, deadline: float,
              setup_errors: bool = False):
    """Read the runner's channel until the sandbox ends or the deadline: 'S' when the runner starts,
    then 'R' gets a fresh nonce; a pass is exactly 'S' 'R' + that nonce echoed back."""
    nonce = secrets.token_hex(16).encode()
    buf, sent = b"", False
    sock.setblocking(False)
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return _verdict(buf, nonce, setup_errors), True
        ready, _, _ = select.select([sock], [], [], min(remaining, 0.05))
        if ready:
            try:
                data = sock.recv(4096)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                data = b""
            if not data:
                return _verdict(buf, nonce, setup_errors), False
            buf += data
            if buf == b"SR" and not sent:
                sent = True
                try:
                    sock.sendall(nonce)
                except OSError:
                    pass
            if len(buf) > 4096:
                return "garbled", False
        elif proc.poll() is not None:
            # The main process ended; a leftover child may still hold the channel: stop here.
            return _verdict(buf, nonce, setup_errors), False


def _verdict(buf: bytes, nonce: bytes, setup_errors: bool) -> str:
    if not buf.startswith(b"S"):
        return "not-started"
    buf = buf[1:]
    if buf == b"R" + nonce:
        return "passed"
    if setup_errors and buf.startswith(b"E"):  # only the runner holds the channel in check mode
        return "not-started"
    if buf.startswith(b"X"):
        return "error: " + buf[1:].split(b"\n")[0].decode("ascii", "replace")
    return "garbled" if buf else "silent"


def _reason(verdict: str, timed_out: bool, rc: int | None, limits):
    if verdict == "passed":
        return "passed", "the tests ran to their end"
    if verdict == "not-started":
        return "sandbox-error", f"the sandbox did not start the job (status {rc}); see stderr"
    if timed_out:
        return "timeout", f"no verdict within the wall-clock limit of {limits.wall_seconds} s"
    if verdict.startswith("error: "):
        return "error", verdict[7:]
    if rc is not None and rc < 0:
        return "killed", f"killed by signal {-rc} before the tests finished"
    if rc is not None and 128 < rc < 128 + 65:
        # bubblewrap's init reports a child killed by signal n as status 128 + n (e.g. SIGXCPU at
        # the CPU-time limit: 152); a program may also exit with such a status itself, which is
        # a failure either way.
        return "killed", f"killed by signal {rc - 128} (status {rc}) before the tests finished"
    if verdict == "garbled":
        return "exited", "the program wrote on the harness channel; not a pass"
    return "exited", f"exited (status {rc}) before the tests finished"


def _signal_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _group_alive(pgid: int) -> bool:
    """Whether a process of the group other than a zombie exists (zombies are harmless and may
    wait for a reaper that is slow, or absent, in a container)."""
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                stat = Path(f"/proc/{pid}/stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2:].split()
            if int(fields[2]) == pgid and fields[0] != "Z":
                return True
    return False


def _kill_group(pgid: int, settle: float = 3.0) -> None:
    """SIGKILL the process group and wait briefly until it is gone."""
    deadline = time.monotonic() + settle
    while True:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            return
        if not _group_alive(pgid):
            return
        if time.monotonic() > deadline:
            log.warning("sandbox process group %d still present after SIGKILL", pgid)
            return
        time.sleep(0.02)


def _tail(path: Path, limit: int) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - limit))
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""
