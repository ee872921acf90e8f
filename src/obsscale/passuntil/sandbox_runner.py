"""The program the sandbox runs: it executes one job and reports to the harness on a channel it owns.

This file runs *inside* the sandbox with the standard library only (the obsscale package is not
visible there): `python runner.py JOB_JSON CHANNEL_FD`.

The verdict never comes from the exit status or from stdout.  The harness (outside the sandbox)
holds the other end of a socket pair whose descriptor this runner inherits.  The runner sends `S`
when it starts (no `S`: the sandbox itself failed, which is not a verdict).  Only when the tests
have run to their end without raising does the runner send `R`; the harness answers with a fresh
random nonce, the runner echoes it, and only that exchange is a pass.

Job modes:

- `check` (HumanEval, a test function `check` and an entry point): the generated code never runs in
  this process.  The runner forks a *candidate process*, which closes the channel, runs prompt +
  completion and then answers calls of the entry point: arguments and results cross a socket as
  plain data (None, bool, int, float, complex, str, bytes, list, tuple, dict, set, frozenset; any
  other object arrives as an opaque value equal to nothing).  The tests (prompt + test code, which
  are trusted) run here with a stand-in for the entry point that forwards each call.  Generated code
  can only return values: it cannot reach the channel, redefine `check`, patch what the tests use or
  end the tests early, so the only way to pass is to return the right values.  This process is
  non-dumpable (no ptrace or /proc/<pid>/mem access from the candidate).
- `inline` (MBPP style, tests that name the solution's functions): prompt + completion + tests run as
  one program in this process; the tests must run to their end without raising (exit paths and
  markers fail, but code written against this runner could reach the channel).
- `script`: one program in this process; it must run to its end without raising.
"""

import builtins
import json
import os
import socket
import struct
import sys
import traceback

MAX_MESSAGE = 64 << 20


def _install_audit_hook():
    """Only where no OS isolation exists (opt-in `unsafe-local`): refuse sockets, process creation
    and writes outside the working directory.  A guard against accidents, not a boundary."""
    root = os.path.realpath(os.getcwd())
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
    refused = ("os.system", "subprocess.Popen", "os.exec", "os.posix_spawn", "os.spawn",
               "os.fork", "os.forkpty", "os.kill", "os.killpg", "os.remove", "os.rename",
               "os.truncate", "os.chmod", "os.rmdir", "shutil.rmtree", "ctypes.dlopen")

    def guard(event, args):
        if event in ("socket.__new__", "socket.connect", "socket.bind") or event in refused:
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


# ---- plain data across the candidate socket -------------------------------------------------

class Opaque:
    """A value of a type that does not cross as data: equal to nothing but itself."""

    def __init__(self, type_name):
        self.type_name = type_name

    def __repr__(self):
        return f"<opaque {self.type_name}>"


def encode(x, depth=0):
    t = type(x)  # exact types: a subclass (with its own __eq__) does not cross as data
    if depth > 200:
        raise ValueError("nesting too deep")
    if x is None:
        return ["none"]
    if t is bool:
        return ["bool", x]
    if t is int:
        return ["int", hex(x)]
    if t is float:
        return ["float", repr(x)]
    if t is complex:
        return ["complex", repr(x.real), repr(x.imag)]
    if t is str:
        return ["str", x]
    if t is bytes:
        return ["bytes", x.hex()]
    if t in (list, tuple, set, frozenset):
        return [t.__name__, [encode(v, depth + 1) for v in x]]
    if t is dict:
        return ["dict", [[encode(k, depth + 1), encode(v, depth + 1)] for k, v in x.items()]]
    return ["opaque", t.__name__]


def decode(m):
    kind = m[0]
    if kind == "none":
        return None
    if kind == "bool":
        return m[1] is True
    if kind == "int":
        return int(m[1], 16)
    if kind == "float":
        return float(m[1])
    if kind == "complex":
        return complex(float(m[1]), float(m[2]))
    if kind == "str":
        return str(m[1])
    if kind == "bytes":
        return bytes.fromhex(m[1])
    if kind in ("list", "tuple", "set", "frozenset"):
        items = [decode(v) for v in m[1]]
        return {"list": list, "tuple": tuple, "set": set, "frozenset": frozenset}[kind](items)
    if kind == "dict":
        return {decode(k): decode(v) for k, v in m[1]}
    return Opaque(str(m[1]))


def send(sock, obj):
    data = json.dumps(obj).encode()
    sock.sendall(struct.pack("!Q", len(data)) + data)


def recv(sock):
    head = _exactly(sock, 8)
    (n,) = struct.unpack("!Q", head)
    if n > MAX_MESSAGE:
        raise ValueError("message too large")
    return json.loads(_exactly(sock, n))


def _exactly(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(min(n - len(buf), 1 << 20))
        if not chunk:
            raise EOFError("the candidate process ended")
        buf += chunk
    return buf


def _serve_candidate(job, sock):
    """In the forked candidate process: run prompt + completion, then answer calls."""
    program = {"__name__": "__main__"}
    try:
        exec(compile(job["prompt"] + job["completion"], "program.py", "exec"), program)
        fn = program[job["entry_point"]]
    except BaseException as exc:
        send(sock, ["ended", type(exc).__name__])
        raise
    send(sock, ["ready"])
    while True:
        args, kwargs = recv(sock)
        try:
            result = fn(*decode(args), **decode(kwargs))
        except BaseException as exc:  # crosses as the exception's name
            send(sock, ["raise", type(exc).__name__, str(exc)[:200]])
            continue
        send(sock, ["return", encode(result)])


class CandidateError(Exception):
    """The candidate raised an exception of a type that is not a builtin one."""


class CandidateEnded(Exception):
    """The candidate process ended (or exited from a call) before the tests finished."""

    def __init__(self, reported):
        super().__init__(reported)
        self.reported = reported


def _remote(sock, entry_point):
    def call(*args, **kwargs):
        send(sock, [encode(args), encode(kwargs)])
        answer = recv(sock)
        if answer[0] == "return":
            return decode(answer[1])
        exc = getattr(builtins, str(answer[1]), None)
        if isinstance(exc, type) and issubclass(exc, BaseException) and not issubclass(exc, Exception):
            raise CandidateEnded(str(answer[1]))  # SystemExit and the like end the tests: a failure
        if not (isinstance(exc, type) and issubclass(exc, Exception)):
            exc = CandidateError
        raise exc(f"{answer[1]}: {answer[2]}")

    call.__name__ = call.__qualname__ = entry_point
    return call


def _non_dumpable():
    try:
        import ctypes

        ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE = 0
    except Exception:
        pass


def _run_check(job, channel_fd):
    tests = {"__name__": "__tests__"}
    # The prompt is trusted: it may define helpers the tests use (HumanEval/38, /50 ...).  A prompt
    # that is no program on its own (a bare signature) gives the tests nothing but the entry point.
    try:
        prompt = compile(job["prompt"], "prompt.py", "exec")
    except SyntaxError:
        prompt = None
    if prompt is not None:
        exec(prompt, tests)
    exec(compile(job["test"], "test.py", "exec"), tests)
    check = tests["check"]
    try:
        ours, theirs = socket.socketpair()
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
    except OSError as exc:  # e.g. the process limit, reached by other samples: not the program's fault
        os.write(channel_fd, b"Efork: " + str(exc).encode()[:100] + b"\n")
        os._exit(1)
    if pid == 0:  # the candidate process: no channel, no runner state worth having
        code = 1
        try:
            os.close(channel_fd)
            ours.close()
            if job.get("audit_hook"):
                _install_audit_hook()
            _serve_candidate(job, theirs)
        except BaseException:
            traceback.print_exc()
        finally:
            try:
                sys.stdout.flush()
                sys.stderr.flush()
            finally:
                os._exit(code)
    theirs.close()
    _non_dumpable()
    try:
        try:
            first = recv(ours)
        except EOFError:
            raise CandidateEnded("the program ended before the tests ran") from None
        if first != ["ready"]:
            raise CandidateEnded(str(first[-1]) if first and first[0] == "ended" else "bad start")
        candidate = _remote(ours, job["entry_point"])
        # HumanEval's tests may name the entry point itself (HumanEval/33 compares with it).
        tests[job["entry_point"]] = candidate
        check(candidate)
    finally:
        ours.close()
        try:  # no zombie is left behind
            os.kill(pid, 9)
        except OSError:
            pass
        os.waitpid(pid, 0)


def _run(job, channel_fd):
    if job["mode"] == "check":
        _run_check(job, channel_fd)
        return
    if job.get("audit_hook"):
        _install_audit_hook()
    if job["mode"] == "script":
        code = job["code"]
    else:  # inline
        code = f"{job['prompt']}{job['completion']}\n\n{job['test']}\n"
    exec(compile(code, "program.py", "exec"), {"__name__": "__main__"})


def main():
    with open(sys.argv[1]) as f:
        job = json.load(f)
    fd = int(sys.argv[2])
    # Everything the report needs is bound here, before any generated code runs.
    write, read, exit_ = os.write, os.read, os._exit
    os.set_inheritable(fd, False)
    write(fd, b"S")  # the sandbox is up: what happens from here on is the job's
    sys.argv = ["program.py"]
    try:
        _run(job, fd)
    except BaseException as exc:  # SystemExit and KeyboardInterrupt too: the tests did not finish
        try:
            traceback.print_exc()
            name = getattr(exc, "reported", None) or type(exc).__name__
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
