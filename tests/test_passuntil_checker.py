"""A pass means the tests ran to their end and passed: cheating completions fail, canonical solutions
pass, through the checker that sampling calls (and the sampling engine itself), in both sandboxes."""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from obsscale.passuntil.backends import Backend, Generation
from obsscale.passuntil.checkers import get_checker
from obsscale.passuntil.sampling import pass_until, read_samples
from obsscale.passuntil.tasks import load_task

ROOT = Path(__file__).resolve().parents[1]
MINI = ROOT / "config/passuntil/tasks/humaneval_mini.yaml"
HUMANEVAL = ROOT / "config/passuntil/tasks/humaneval.yaml"

# Completions of `def add(a, b)` that return the wrong value and try to be scored as a pass anyway.
CHEATS = {
    "exit": "    return None\nexit()\n",
    "quit": "    return None\nquit()\n",
    "sys.exit(0)": "    return None\nimport sys\nsys.exit(0)\n",
    "raise SystemExit": "    return None\nraise SystemExit\n",
    "os._exit(0)": "    return None\nimport os\nos._exit(0)\n",
    "os._exit in the call": "    import os\n    os._exit(0)\n",
    "kill self": "    return None\nimport os\nos.kill(os.getpid(), 9)\n",
    "sys.exit in the call": "    import sys\n    sys.exit(0)\n",
    "redefine check": "    return None\n\ndef check(candidate):\n    pass\n",
    "redefine check from a thread": (
        "    return None\nimport threading, time\ndef _swap():\n    for _ in range(3000):\n"
        "        globals()['check'] = lambda c: None\n        time.sleep(0.001)\n"
        "threading.Thread(target=_swap, daemon=True).start()\n"),
    "patch AssertionError": ("    return None\nimport builtins\n"
                             "builtins.AssertionError = type('A', (Exception,), {})\n"),
    "always-equal object": ("    class A:\n        def __eq__(self, other):\n            return True\n"
                            "    return A()\n"),
    "always-equal int subclass": ("    class I(int):\n        def __eq__(self, other):\n"
                                  "            return True\n    return I(0)\n"),
    "print a marker": "    print('R')\n    print('passed')\n    print('ok')\n    return None\n",
    "write R on every descriptor": (
        "    import os\n    for fd in range(64):\n        try:\n            os.write(fd, b'R')\n"
        "        except OSError:\n            pass\n    return None\n"),
    "speak the runner's protocol": (
        "    import os, select\n    for fd in range(3, 64):\n        try:\n"
        "            os.write(fd, b'R')\n            if select.select([fd], [], [], 0.2)[0]:\n"
        "                os.write(fd, os.read(fd, 64))\n                os._exit(0)\n"
        "        except OSError:\n            pass\n    return None\n"),
    "close stdout": ("    import os, sys\n    sys.stdout.close()\n    os.close(1)\n    os.close(2)\n"
                     "    return None\n"),
    "fork, child exits 0": "    import os\n    if os.fork() == 0:\n        os._exit(0)\n    return None\n",
    "fork, parent exits 0": "    return None\nimport os\nif os.fork() != 0:\n    os._exit(0)\n",
    "kill the parent": "    import os\n    os.kill(os.getppid(), 9)\n    return None\n",
    "sleep past the limit": "    import time\n    time.sleep(60)\n",
}
SANDBOXES = ["bwrap", "unsafe-local"]


@pytest.fixture(scope="module")
def mini():
    task = load_task(MINI)
    task.checker.limits = type(task.checker.limits)(cpu_seconds=2, wall_seconds=3)
    return task


@pytest.mark.parametrize("sandbox", SANDBOXES)
@pytest.mark.parametrize("name", list(CHEATS))
def test_cheating_completion_fails(mini, name, sandbox):
    mini.checker.prepare(sandbox)
    assert mini.checker(mini.instance("he-add"), CHEATS[name]) is False  # the call sampling makes


@pytest.mark.parametrize("sandbox", SANDBOXES)
def test_patching_what_the_tests_use_fails(sandbox):
    checker = get_checker({"name": "code_execution", "wall_seconds": 5, "sandbox": sandbox})
    inst = {"id": "close", "entry_point": "half", "prompt": "def half(x):\n",
            "test": "import math\n\ndef check(candidate):\n"
                    "    assert math.isclose(candidate(3), 1.5)\n    assert abs(candidate(1) - 0.5) < 1e-9\n"}
    assert checker(inst, "    return x / 2\n")
    assert not checker(inst, "    return 0\nimport math\nmath.isclose = lambda *a, **k: True\n")
    assert not checker(inst, "    import math, builtins\n    math.isclose = lambda *a, **k: True\n"
                             "    builtins.abs = lambda v: 0\n    return 0\n")


def test_canonical_solutions_pass_in_both_sandboxes(mini):
    for sandbox in SANDBOXES:
        mini.checker.prepare(sandbox)
        for inst in mini.instances:
            res = mini.checker.run(inst, inst["canonical_solution"])
            assert res.passed, (sandbox, inst["id"], res.detail, res.stderr)
    mini.checker.prepare("bwrap")


def test_real_humaneval_canonical_pass_and_empty_bodies_fail():
    task = load_task(HUMANEVAL)
    assert len(task.instances) == 164 and task.instances[0]["id"] == "HumanEval/0"
    assert task.stop == ["\nclass", "\ndef", "\n#", "\nif", "\nprint"]
    with ThreadPoolExecutor(max_workers=4) as pool:
        canonical = list(pool.map(lambda i: task.checker(i, i["canonical_solution"]), task.instances))
        empty = list(pool.map(lambda i: task.checker(i, "    pass\n"), task.instances))
    failed = [i["id"] for i, ok in zip(task.instances, canonical) if not ok]
    assert sum(canonical) == 164, f"canonical solutions failing: {failed}"
    assert sum(empty) == 0


class CannedBackend(Backend):
    """Returns the i-th canned completion for attempt i of the one instance (in seed order)."""

    def __init__(self, completions, order):
        self.completions = completions
        self.order = order  # seed -> attempt index

    def sample(self, prompts, seeds, **kw):
        return [Generation(self.completions[self.order[s]], 1) for s in seeds]

    def greedy(self, prompts, **kw):
        return [Generation(self.completions[0], 1) for _ in prompts]


def test_the_sampling_engine_counts_no_cheat_as_a_pass(tmp_path):
    from obsscale.passuntil.sampling import derive_seed

    mini = load_task(MINI)
    mini.checker.limits = type(mini.checker.limits)(cpu_seconds=2, wall_seconds=3)
    add = mini.instance("he-add")
    mini.instances = [add]
    cheats = [c for n, c in CHEATS.items() if n != "sleep past the limit"]
    completions = cheats + [add["canonical_solution"]] * 2
    mini.K_max = len(completions)
    mini.greedy = False
    mini.batch = {"initial": 4, "growth": 2, "max": 64}
    order = {derive_seed("m", mini.name, "he-add", a, mini.seed): a for a in range(len(completions))}
    pass_until(mini, CannedBackend(completions, order), "m", tmp_path / "log.jsonl", progress=False,
               check_workers=4)
    header, samples, _ = read_samples(tmp_path / "log.jsonl")
    assert header["sandbox"]["mode"] == "bwrap" and header["design"]["checker"]["sandbox"] == "bwrap"
    passed = samples.sort_values("attempt")["passed"].tolist()
    assert passed == [False] * len(cheats) + [True, True]


def _cli(*args, stdin=None):
    return subprocess.run([sys.executable, "-m", "obsscale.cli", "passuntil", "check", *args],
                          capture_output=True, text=True, input=stdin, cwd=ROOT, timeout=120)


def test_check_command_prints_one_json_line(tmp_path):
    good = tmp_path / "good.py"
    good.write_text("    return a + b\n")
    out = _cli(str(MINI), "he-add", str(good))
    assert out.returncode == 0, out.stderr
    verdict = json.loads(out.stdout)
    assert verdict["passed"] is True and verdict["reason"] == "passed"
    assert "pid-namespace" in verdict["isolation"] and verdict["sandbox"] == "bwrap"
    out = _cli(str(MINI), "he-add", "-", stdin=CHEATS["exit"])
    verdict = json.loads(out.stdout)
    assert out.returncode == 0 and verdict["passed"] is False and verdict["reason"] == "error"
    assert verdict["detail"] == "SystemExit"
    out = _cli(str(MINI), "he-ad", str(good))
    assert out.returncode == 2 and "did you mean 'he-add'" in out.stderr and out.stdout == ""


def test_check_command_on_the_real_humaneval(tmp_path):
    task = load_task(HUMANEVAL)
    sol = tmp_path / "sol.py"
    sol.write_text(task.instance("HumanEval/13")["canonical_solution"])
    verdict = json.loads(_cli(str(HUMANEVAL), "HumanEval/13", str(sol)).stdout)
    assert verdict["passed"] is True
    sol.write_text("    return 1\n")
    verdict = json.loads(_cli(str(HUMANEVAL), "HumanEval/13", str(sol), "--output").stdout)
    assert verdict["passed"] is False and verdict["detail"] == "AssertionError"
    assert "AssertionError" in verdict["stderr"]


def test_an_lm_eval_task_is_a_passuntil_code_task():
    task = load_task(ROOT / "config/passuntil/tasks/humaneval_lm_eval.yaml")
    assert len(task.instances) == 164
    inst = task.instances[2]
    assert task.render(inst) == inst["prompt"] and inst["entry_point"] == "truncate_number"
    assert task.stop == ["\nclass", "\ndef", "\n#", "\nif", "\nprint"]  # lm-eval's until
    assert task.checker(inst, inst["canonical_solution"])
    assert not task.checker(inst, "    return number\n")


def test_mbpp_style_fields_map_by_config(tmp_path):
    """Tests as a list of asserts naming the solution's function, no entry point, no code prompt."""
    data = tmp_path / "mbpp.jsonl"
    data.write_text(json.dumps({"task_id": 7, "text": "Write a function to square a number.",
                                "test_list": ["assert sq(3) == 9", "assert sq(-2) == 4"]}) + "\n")
    yml = tmp_path / "mbpp.yaml"
    yml.write_text(f"name: mbpp_tiny\ndata: {{path: {data}, id_field: task_id, "
                   "fields: {tests: test_list}}\nprompt: \"{text}\\n\"\n"
                   "checker: {name: code_execution, prompt_field: null, test_field: tests, "
                   "entry_point_field: null}\n")
    task = load_task(yml)
    inst = task.instance("7")
    assert task.checker(inst, "def sq(x):\n    return x * x\n")
    assert not task.checker(inst, "def sq(x):\n    return 9\n")
    assert not task.checker(inst, "def sq(x):\n    return 9\nexit()\n")


def test_the_unsafe_opt_in_is_written_into_the_outputs(tmp_path):
    import pandas as pd

    from obsscale.stages.passuntil import estimate_task

    task = load_task(MINI)
    add = task.instance("he-add")
    task.instances, task.greedy, task.K_max = [add], False, 4
    task.checker.prepare("unsafe-local")  # the run-level opt-in
    from obsscale.passuntil.sampling import derive_seed

    logs = []
    for m in ("a", "b"):
        order = {derive_seed(m, task.name, "he-add", a, task.seed): a for a in range(4)}
        logs.append(str(tmp_path / f"{m}.jsonl"))
        pass_until(task, CannedBackend([add["canonical_solution"]] * 4, order), m, logs[-1],
                   progress=False)
    header = read_samples(logs[0])[0]
    assert header["sandbox"]["mode"] == "unsafe-local" and "audit-hook" in header["sandbox"]["layers"]
    estimate_task(logs, ["a", "b"], [1e6, 2e6], str(tmp_path / "est.csv"), str(tmp_path / "sum.csv"),
                  n_boot=10)
    assert set(pd.read_csv(tmp_path / "sum.csv")["sandbox"]) == {"unsafe-local"}
    provenance = json.loads((tmp_path / "est.provenance.json").read_text())
    assert provenance["settings"]["sandbox"] == {"a": "unsafe-local", "b": "unsafe-local"}
