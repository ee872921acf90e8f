"""Generated code is contained: each hostile program is a failed sample and the test process
(and the files around it) are unharmed."""

import os
import socket
import threading
import time

import pytest

from obsscale.passuntil.sandbox import SandboxLimits, isolation, run_python

LIMITS = SandboxLimits(cpu_seconds=2, wall_seconds=6, memory_bytes=512 << 20, max_processes=8)
MODES = [pytest.param(True, id="os-isolation"), pytest.param(False, id="audit-hook-only")]


@pytest.mark.parametrize("os_isolation", MODES)
def test_correct_program_passes_and_failing_one_fails(os_isolation):
    ok = run_python("assert sum(range(5)) == 10\nprint('fine')", LIMITS, os_isolation=os_isolation)
    assert ok.passed and ok.stdout.strip() == "fine"
    bad = run_python("assert 1 == 2", LIMITS, os_isolation=os_isolation)
    assert not bad.passed and bad.reason == "error" and "AssertionError" in bad.stderr


@pytest.mark.parametrize("os_isolation", MODES)
def test_infinite_loop_is_stopped(os_isolation):
    t = time.monotonic()
    res = run_python("while True:\n    pass\n", LIMITS, os_isolation=os_isolation)
    assert not res.passed
    assert time.monotonic() - t < LIMITS.wall_seconds + 5


def test_wall_clock_limit_kills_a_sleeper():
    # Sleeping uses no CPU: only the wall-clock limit stops it.
    res = run_python("import time\ntime.sleep(60)", SandboxLimits(wall_seconds=1))
    assert not res.passed and res.reason == "timeout" and res.seconds < 10


def _processes():
    return {p for p in os.listdir("/proc") if p.isdigit()}


def _processes_of(uid):
    out = set()
    for p in _processes():
        try:
            if os.stat(f"/proc/{p}").st_uid == uid:
                out.add(p)
        except OSError:
            pass
    return out


@pytest.mark.parametrize("os_isolation", MODES)
def test_fork_bomb_is_contained(os_isolation):
    before = len(_processes())
    code = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n"
    res = run_python(code, LIMITS, os_isolation=os_isolation)
    assert not res.passed
    time.sleep(0.5)
    # Nothing of the bomb survives the sample (other jobs may start processes meanwhile).
    if os_isolation and isolation()["drop_user"]:
        assert _processes_of(65534) == set()
    assert len(_processes()) < before + 30


@pytest.mark.parametrize("os_isolation", MODES)
def test_memory_bomb_is_contained(os_isolation):
    res = run_python("x = bytearray(8 << 30)\nprint(len(x))", LIMITS, os_isolation=os_isolation)
    assert not res.passed and "MemoryError" in res.stderr
    res = run_python("a = []\nwhile True:\n    a.append(' ' * 10**7)", LIMITS,
                     os_isolation=os_isolation)
    assert not res.passed


@pytest.mark.parametrize("os_isolation", MODES)
def test_write_outside_the_sandbox_is_refused(tmp_path, os_isolation):
    target = tmp_path / "outside.txt"
    code = f"open({str(target)!r}, 'w').write('escaped')\n"
    res = run_python(code, LIMITS, os_isolation=os_isolation)
    assert not res.passed
    assert not target.exists()
    # Writing inside its own working directory is allowed (programs may use scratch files).
    assert run_python("open('scratch.txt', 'w').write('ok')", LIMITS, os_isolation=os_isolation).passed


@pytest.mark.parametrize("os_isolation", MODES)
def test_socket_open_is_refused(os_isolation):
    # A listener in the test process: a connection from the sandbox would be accepted here.
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(3)
    port = server.getsockname()[1]
    accepted = []
    t = threading.Thread(target=lambda: accepted.append(_accept(server)))
    t.start()
    code = f"import socket\ns = socket.create_connection(('127.0.0.1', {port}), timeout=2)\n"
    res = run_python(code, LIMITS, os_isolation=os_isolation)
    t.join()
    server.close()
    assert not res.passed
    assert accepted == [None]


def _accept(server):
    try:
        conn, _ = server.accept()
        conn.close()
        return "connected"
    except OSError:
        return None


def test_isolation_reports_its_layers():
    iso = isolation()
    assert iso["audit_hook"] is True
    assert iso["network"] in {"netns", "audit-hook"}
    if os.geteuid() != 0:
        assert iso["netns"] is False and iso["drop_user"] is False


@pytest.mark.skipif(not isolation()["drop_user"], reason="needs root to run the child as nobody")
def test_fork_bomb_past_the_audit_hook_meets_the_process_limit():
    # ctypes fork bypasses the audit hook: only RLIMIT_NPROC (as `nobody`) and the group kill hold.
    code = ("import ctypes, os\nlibc = ctypes.CDLL(None)\nn = 0\nwhile n < 100000:\n"
            "    n += 1\n    libc.fork()\n")
    res = run_python(code, LIMITS)
    assert res.seconds < LIMITS.wall_seconds + 5
    time.sleep(0.5)
    assert _processes_of(65534) == set(), "processes of the sandbox user survived"
