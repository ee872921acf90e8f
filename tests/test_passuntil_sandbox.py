"""Generated code is contained, as root and as an unprivileged user: each hostile program is a failed
(or harmless) sample, and the host around it (files, processes, network, environment) is untouched.

Every containment test runs twice: `self` (the sandbox started by this test process, as sampling
starts it; CI runs as root) and `unprivileged` (the sandbox started by a process running as
`nobody`, as a SLURM job of an ordinary user starts it).  The host-side checks run here.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from obsscale.passuntil import sandbox
from obsscale.passuntil.sandbox import SandboxLimits, SandboxUnavailable, isolation, run_python

ROOT = Path(__file__).resolve().parents[1]
NOBODY = 65534
LIMITS = SandboxLimits(cpu_seconds=2, wall_seconds=4, memory_bytes=512 << 20, max_processes=8)
IS_ROOT = os.geteuid() == 0
SETPRIV = shutil.which("setpriv")
USERS = [
    pytest.param("self", id="self"),
    pytest.param("unprivileged", id="unprivileged", marks=pytest.mark.skipif(
        not (IS_ROOT and SETPRIV), reason="switching to an unprivileged user needs root and setpriv; "
        "the test process itself is unprivileged, which the `self` runs cover")),
]

# Runs as `nobody`: the sandbox modules (copied, readable by nobody) and the system interpreter.
_HELPER = r"""
import json, sys, types, importlib.util
pkg = sys.argv[1]
sys.path.insert(0, pkg)
sub = types.ModuleType("obsscale.passuntil")  # skip the package __init__ (numpy, pandas)
sub.__path__ = [pkg + "/obsscale/passuntil"]
sys.modules["obsscale.passuntil"] = sub
from obsscale.passuntil import sandbox
req = json.load(sys.stdin)
limits = sandbox.SandboxLimits(**req["limits"])
if req.get("test"):
    res = sandbox.run_test(req["prompt"], req["completion"], req["test"], req["entry_point"], limits)
else:
    res = sandbox.run_python(req["code"], limits)
out = dict(vars(res))
print(json.dumps(out))
"""


def _open_dir(prefix: str, mode: int) -> Path:
    """A folder directly under /tmp (pytest's own base folder is private to its user)."""
    d = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    os.chmod(d, mode)
    return d


@pytest.fixture(scope="module")
def unprivileged_copy():
    """The sandbox modules in a folder `nobody` can read, and the helper that runs them."""
    base = _open_dir("obsscale-test-copy-", 0o755)
    src = ROOT / "src" / "obsscale"
    for rel in ("__init__.py", "core/__init__.py", "core/errors.py", "passuntil/sandbox.py",
                "passuntil/sandbox_process.py", "passuntil/sandbox_runner.py"):
        dest = base / "obsscale" / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src / rel, dest)
    (base / "helper.py").write_text(_HELPER)
    for p in [base, *base.rglob("*")]:
        os.chmod(p, 0o755 if p.is_dir() else 0o644)
    yield base
    shutil.rmtree(base, ignore_errors=True)


def _python_for_nobody() -> str:
    return "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable


def run_as(user: str, code: str, copy: Path | None = None, limits: SandboxLimits = LIMITS,
           env: dict | None = None) -> dict:
    """Run `code` in the sandbox started by this process (`self`) or by a `nobody` process."""
    if user == "self":
        return dict(vars(run_python(code, limits)))
    cmd = [SETPRIV, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--",
           _python_for_nobody(), str(copy / "helper.py"), str(copy)]
    proc = subprocess.run(cmd, input=json.dumps({"code": code, "limits": vars(limits)}),
                          capture_output=True, text=True, timeout=120, cwd="/",
                          env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **(env or {})})
    assert proc.returncode == 0, f"the unprivileged job died: {proc.stderr[-3000:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture
def host_dir():
    """A folder anyone may write: only the sandbox, not file permissions, protects it."""
    d = _open_dir("obsscale-test-host-", 0o777)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def _processes_with(marker: str) -> list[tuple[int, int]]:
    """(pid, real uid) of host processes whose command line contains `marker`."""
    out = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            if marker in cmdline:
                uid = int(Path(f"/proc/{pid}/status").read_text().split("Uid:")[1].split()[0])
                out.append((int(pid), uid))
        except (OSError, IndexError):
            pass
    return out


def _settled(marker: str, wait: float = 1.0) -> list:
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if not _processes_with(marker):
            return []
        time.sleep(0.05)
    return _processes_with(marker)


# ---- the boundary ------------------------------------------------------------------------------

@pytest.mark.parametrize("user", USERS)
def test_correct_program_passes_and_failing_one_fails(user, unprivileged_copy):
    ok = run_as(user, "assert sum(range(5)) == 10\nprint('fine')", unprivileged_copy)
    assert ok["passed"] and ok["stdout"].strip() == "fine"
    assert ok["isolation"]["mode"] == "bwrap" and "pid-namespace" in ok["isolation"]["layers"]
    bad = run_as(user, "assert 1 == 2", unprivileged_copy)
    assert not bad["passed"] and bad["reason"] == "error" and "AssertionError" in bad["stderr"]


@pytest.mark.parametrize("user", USERS)
def test_infinite_loop_and_sleeper_are_stopped(user, unprivileged_copy):
    short = SandboxLimits(cpu_seconds=1, wall_seconds=2)
    t = time.monotonic()
    res = run_as(user, "while True:\n    pass\n", unprivileged_copy, short)
    assert not res["passed"] and res["reason"] in {"killed", "timeout"}
    res = run_as(user, "import time\ntime.sleep(600)\n", unprivileged_copy, short)
    assert not res["passed"] and res["reason"] == "timeout"
    assert time.monotonic() - t < 2 * short.wall_seconds + 10


@pytest.mark.parametrize("user", USERS)
def test_fork_bomb_and_ctypes_setsid_child_do_not_survive(user, unprivileged_copy):
    marker = f"{3000 + secrets.randbelow(999)}.{secrets.randbelow(10**6):06d}"
    bomb = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n"
    res = run_as(user, bomb, unprivileged_copy, SandboxLimits(cpu_seconds=1, wall_seconds=2,
                                                              max_processes=8))
    assert not res["passed"]
    # A daemon made with libc (no Python-level hook sees it): fork, setsid, fork, exec sleep.
    daemon = (f"import ctypes, os\nlibc = ctypes.CDLL(None)\nif libc.fork() == 0:\n"
              f"    libc.setsid()\n    if libc.fork() == 0:\n"
              f"        os.execv('/bin/sleep', ['sleep', '{marker}'])\n    os._exit(0)\n"
              f"import time\ntime.sleep(0.5)\n")
    res = run_as(user, daemon, unprivileged_copy)
    assert res["passed"]  # the program itself ran to its end ...
    assert _settled(marker) == [], "a process of the sample outlived it"  # ... its daemon did not
    assert _settled("/sandbox/runner.py") == []


@pytest.mark.parametrize("user", USERS)
def test_memory_bomb_is_contained(user, unprivileged_copy):
    res = run_as(user, "x = bytearray(8 << 30)\nprint(len(x))", unprivileged_copy)
    assert not res["passed"] and "MemoryError" in res["stderr"]
    # tmpfs is memory too: /tmp and the working directory are size-limited.
    fill = ("import os\nfor d in ('/tmp', '.'):\n    n = 0\n    try:\n        for i in range(200):\n"
            "            open(f'{d}/f{i}', 'wb').write(b'x' * (1 << 20))\n            n += 1\n"
            "    except OSError as e:\n        print(d, n, e.errno)\n")
    res = run_as(user, fill, unprivileged_copy)
    lines = res["stdout"].split("\n")
    assert len(lines) >= 2 and all(int(line.split()[1]) <= 64 for line in lines[:2]), res["stdout"]


@pytest.mark.parametrize("user", USERS)
def test_files_outside_the_work_directory_are_untouched(user, unprivileged_copy, host_dir):
    target = host_dir / "precious.txt"
    target.write_text("precious")
    os.chmod(target, 0o666)
    code = "import os\nt = {t!r}\nout = []\n".format(t=str(target)) + "".join(
        f"try:\n    {op}\n    out.append({op!r})\nexcept OSError:\n    pass\n" for op in (
            "open(t, 'w').write('escaped')", "os.truncate(t, 0)", "os.chmod(t, 0o000)",
            "os.rename(t, t + '.moved')", "os.remove(t)"))
    code += "open('scratch.txt', 'w').write('ok')\nprint(out)\n"
    res = run_as(user, code, unprivileged_copy)
    assert res["passed"], res["stderr"]  # scratch files in its own working directory are fine
    assert res["stdout"].strip() == "[]"
    assert target.read_text() == "precious" and (os.stat(target).st_mode & 0o777) == 0o666
    assert sorted(p.name for p in host_dir.iterdir()) == ["precious.txt"]


@pytest.mark.parametrize("user", USERS)
def test_no_connection_reaches_a_local_listener(user, unprivileged_copy):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    server.settimeout(0.1)
    port = server.getsockname()[1]
    accepted = []
    done = threading.Event()

    def accept():
        while not done.is_set():
            try:
                conn, _ = server.accept()
                accepted.append("connected")
                conn.close()
            except OSError:
                pass

    t = threading.Thread(target=accept)
    t.start()
    code = (f"import socket\ntry:\n    socket.create_connection(('127.0.0.1', {port}), timeout=1)\n"
            f"    print('connected')\nexcept OSError as e:\n    print('refused', e)\n")
    res = run_as(user, code, unprivileged_copy)
    time.sleep(0.3)
    done.set()
    t.join()
    server.close()
    assert accepted == [] and "refused" in res["stdout"]


@pytest.mark.parametrize("user", USERS)
def test_shells_run_nothing_on_the_host(user, unprivileged_copy, host_dir):
    marks = {k: host_dir / f"{k}.created" for k in ("system", "ctypes", "fork_exec")}
    # Each shell also touches a file in its own /tmp, to show that the shell itself did run.
    sh = {k: f"touch {p} /tmp/{k}.ran".encode() for k, p in marks.items()}
    code = (
        "import os, ctypes, _posixsubprocess, sys\n"
        f"os.system({sh['system']!r}.decode())\n"
        f"ctypes.CDLL(None).system({sh['ctypes']!r})\n"
        "r, w = os.pipe()\n"
        f"args = [[b'/bin/sh', b'-c', {sh['fork_exec']!r}], [b'/bin/sh'], True, (), None, None,"
        " -1, -1, -1, -1, -1, -1, r, w, True, False]\n"
        "rest = [0, None, None, None, -1, None]\n"
        "try:\n    pid = _posixsubprocess.fork_exec(*args, *rest)\n"
        "except TypeError:  # the signature differs between Python versions\n"
        "    pid = _posixsubprocess.fork_exec(*args, *rest, False)\n"
        "os.waitpid(pid, 0)\n"
        "print(sorted(f for f in os.listdir('/tmp') if f.endswith('.ran')))\n")
    res = run_as(user, code, unprivileged_copy)
    assert res["passed"], res["stderr"]
    assert res["stdout"].strip() == "['ctypes.ran', 'fork_exec.ran', 'system.ran']"
    assert [k for k, p in marks.items() if p.exists()] == []


@pytest.mark.parametrize("user", USERS)
def test_the_parent_job_cannot_be_killed(user, unprivileged_copy):
    sentinel = subprocess.Popen([SETPRIV, f"--reuid={NOBODY}", f"--regid={NOBODY}",
                                 "--clear-groups", "--", "sleep", "60"] if IS_ROOT and SETPRIV
                                else ["sleep", "60"])
    try:
        time.sleep(0.2)
        code = (f"import os, signal\nfor pid in (os.getppid(), {sentinel.pid}, {os.getpid()}):\n"
                f"    try:\n        os.kill(pid, signal.SIGKILL)\n    except OSError:\n"
                f"        pass\n")
        if user == "self":  # killing this test process would end the test run: skip our own pid
            code = code.replace(f", {os.getpid()}", "")
        run_as(user, code, unprivileged_copy)  # (the unprivileged job returning = it survived)
        time.sleep(0.2)
        assert sentinel.poll() is None, "a process outside the sandbox was killed"
    finally:
        sentinel.kill()
        sentinel.wait()


@pytest.mark.parametrize("user", USERS)
def test_the_job_environment_does_not_leak(user, unprivileged_copy, monkeypatch):
    secret = "tok-" + secrets.token_hex(8)
    monkeypatch.setenv("OBSSCALE_TEST_TOKEN", secret)
    code = ("import os\nseen = [repr(dict(os.environ))]\n"
            f"for pid in [os.getppid(), 1, {os.getpid()}] + [p for p in os.listdir('/proc') if p.isdigit()]:\n"
            "    try:\n        seen.append(open(f'/proc/{pid}/environ', 'rb').read().decode('latin-1'))\n"
            "    except OSError:\n        pass\n"
            "print('\\n'.join(seen))\n")
    res = run_as(user, code, unprivileged_copy, env={"OBSSCALE_TEST_TOKEN": secret})
    assert res["passed"]
    assert secret not in res["stdout"] and "PATH=/usr/bin:/bin" in res["stdout"]


@pytest.mark.parametrize("user", USERS)
def test_a_gigabyte_of_stdout_is_cut_off(user, unprivileged_copy):
    t = time.monotonic()
    res = run_as(user, "import sys\nchunk = 'x' * (1 << 20)\nfor _ in range(1024):\n"
                       "    sys.stdout.write(chunk)\n", unprivileged_copy)
    assert not res["passed"]
    assert len(res["stdout"]) <= LIMITS.output_bytes
    assert time.monotonic() - t < LIMITS.wall_seconds + 10


@pytest.mark.parametrize("user", USERS)
def test_no_files_remain_and_a_daemon_cannot_tamper_with_the_next_sample(user, unprivileged_copy):
    tag = secrets.token_hex(6)
    before = set(Path("/tmp").glob("obsscale-sandbox-*"))
    marker = f"{4000 + secrets.randbelow(999)}.{secrets.randbelow(10**6):06d}"
    # Sample 1 leaves files and a daemon that rewrites every program it can find as a passing one.
    first = (
        "import os, glob, time\n"
        f"for p in ('/tmp/leak-{tag}', os.path.expanduser('~/leak-{tag}'), 'leak-{tag}'):\n"
        "    open(p, 'w').write('x')\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    if os.fork() == 0:\n"
        f"        os.execv('/bin/sh', ['sh', '-c', 'for i in $(seq 200); do for f in /sandbox/* /tmp/obsscale-sandbox-*/*; do echo pass > \"$f\"; done 2>/dev/null; sleep 0.05; done; sleep {marker}'])\n"
        "    os._exit(0)\n"
        "time.sleep(0.3)\n")
    assert run_as(user, first, unprivileged_copy)["passed"]
    second = run_as(user, "assert False, 'fails on its own'\n", unprivileged_copy)
    assert not second["passed"] and second["reason"] == "error"
    assert _settled(marker) == [] and _settled("seq 200") == []
    assert list(Path("/tmp").glob(f"leak-{tag}")) == [] and list(Path("/").glob(f"leak-{tag}")) == []
    assert set(Path("/tmp").glob("obsscale-sandbox-*")) <= before


@pytest.mark.parametrize("user", USERS)
def test_generated_code_never_runs_as_root(user, unprivileged_copy):
    marker = f"{5000 + secrets.randbelow(999)}.{secrets.randbelow(10**6):06d}"
    seen: list = []
    stop = threading.Event()

    def watch():
        while not stop.is_set():
            seen.extend(_processes_with(marker))
            time.sleep(0.02)

    t = threading.Thread(target=watch)
    t.start()
    code = f"import subprocess\nsubprocess.run(['sleep', '{marker}'], timeout=1)\n"
    run_as(user, code, unprivileged_copy, limits=SandboxLimits(wall_seconds=3))
    stop.set()
    t.join()
    assert seen, "the watcher never saw the sample's process"
    uids = {uid for _, uid in seen}
    assert 0 not in uids and uids == {NOBODY if IS_ROOT else os.getuid()}


@pytest.mark.parametrize("user", USERS)
def test_reported_layers_are_really_there(user, unprivileged_copy, host_dir):
    """Each layer `isolation()` reports is checked from inside: none is claimed without being there."""
    probe = ("import os, socket, resource, json\n"
             f"host = {str(host_dir)!r}\n"
             "try:\n    open('/usr/escape', 'w'); usr_ro = False\nexcept OSError:\n    usr_ro = True\n"
             "print(json.dumps({'pid': os.getpid(), 'ifs': [n for _, n in socket.if_nameindex()],"
             " 'usr_ro': usr_ro, 'host_seen': os.path.exists(host) or os.path.exists('/root'),"
             " 'cpu': resource.getrlimit(resource.RLIMIT_CPU)[0],"
             " 'as': resource.getrlimit(resource.RLIMIT_AS)[0],"
             " 'nproc': resource.getrlimit(resource.RLIMIT_NPROC)[0]}))\n")
    res = run_as(user, probe, unprivileged_copy)
    layers = set(res["isolation"]["layers"])
    assert {"user-namespace", "pid-namespace", "network-namespace", "mount-namespace",
            "unprivileged-uid", "rlimits"} <= layers
    seen = json.loads(res["stdout"])
    assert seen["pid"] <= 3  # pid-namespace
    assert seen["ifs"] == ["lo"]  # network-namespace
    assert seen["usr_ro"] and not seen["host_seen"]  # mount-namespace
    assert not Path("/usr/escape").exists()
    assert (seen["cpu"], seen["as"]) == (LIMITS.cpu_seconds, LIMITS.memory_bytes)  # rlimits
    assert 0 < seen["nproc"] < 100_000


# ---- failing closed ----------------------------------------------------------------------------

@pytest.fixture
def fresh_isolation():
    isolation.cache_clear()
    yield
    isolation.cache_clear()


def test_without_bubblewrap_code_refuses_to_run(fresh_isolation, monkeypatch):
    monkeypatch.setattr(sandbox.shutil, "which", lambda name, **kw: None)
    with pytest.raises(SandboxUnavailable, match=r"bubblewrap \(bwrap\) is not installed.*"
                                                  r"apt-get install bubblewrap.*unsafe-local"):
        run_python("print('never runs')")


def test_bwrap_that_cannot_make_namespaces_refuses_with_its_reason(fresh_isolation, monkeypatch):
    # What bwrap prints where unprivileged user namespaces are disabled.
    folder = _open_dir("obsscale-test-bin-", 0o755)
    fake = folder / "bwrap"
    fake.write_text("#!/bin/sh\necho 'bwrap: No permissions to creating new namespace, likely "
                    "because the kernel does not allow non-privileged user namespaces.' >&2\n"
                    "exit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{folder}:{os.environ['PATH']}")
    try:
        with pytest.raises(SandboxUnavailable, match=r"cannot start one here.*non-privileged user "
                                                      r"namespaces.*user.max_user_namespaces"):
            run_python("print('never runs')")
    finally:
        shutil.rmtree(folder)


def test_unsafe_local_is_an_explicit_opt_in_and_never_root():
    iso = isolation("unsafe-local")
    assert iso["mode"] == "unsafe-local" and "audit-hook" in iso["layers"]
    res = run_python("import os\nprint(os.getuid(), os.geteuid())", LIMITS, sandbox="unsafe-local")
    assert res.passed
    uid, euid = map(int, res.stdout.split())
    assert uid != 0 and euid != 0
    with pytest.raises(ValueError, match="not known"):
        run_python("pass", LIMITS, sandbox="none")


def test_a_sandbox_that_does_not_start_is_no_verdict(monkeypatch):
    """Where the sandbox itself fails (here: an interpreter that is not there), the result says so,
    and the checker stops the job instead of recording a failed sample."""
    from obsscale.passuntil import checkers

    plan = {**isolation(), "python": "/nonexistent/python3"}
    res = sandbox._execute({"mode": "script", "code": "print(1)"}, LIMITS, plan)
    assert not res.passed and res.reason == "sandbox-error"
    calls = []

    def broken(*args, **kwargs):
        calls.append(1)
        return res

    monkeypatch.setattr(checkers, "run_test", broken)
    monkeypatch.setattr(checkers.time, "sleep", lambda s: None)
    checker = checkers.get_checker("code_execution")
    with pytest.raises(sandbox.SandboxError, match="failed 3 times"):
        checker({"id": "x", "prompt": "", "test": "", "entry_point": "f"}, "")
    assert len(calls) == 3
