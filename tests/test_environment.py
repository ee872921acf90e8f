"""The project's pins agree everywhere they are written: pyproject.toml, requirements.txt, envs/,
and the GPU dependency set (requirements-gpu.txt, its lock, envs/eval-gpu.yaml).  That the GPU set
resolves on the package index is checked by .ci/resolve-gpu-set (network; run by .ci/run)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
PIN = re.compile(r"^\s*([A-Za-z0-9_.\-]+)\s*==\s*([^\s;#]+)")


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pins(lines) -> dict[str, str]:
    out = {}
    for line in lines:
        m = PIN.match(line)
        if m:
            out[_norm(m.group(1))] = m.group(2)
    return out


def requirement_pins(name: str = "requirements.txt") -> dict[str, str]:
    return _pins((ROOT / name).read_text().splitlines())


# The conda environments of the GPU rules follow the GPU set; every other one the CPU set.
GPU_ENVS = {"eval-gpu.yaml"}
# Where the GPU set may differ from the CPU set (requirements-gpu.txt says why), and what it adds.
GPU_DIFFERS = {"numpy", "transformers"}
GPU_ONLY = {"vllm"}
CPU_ONLY = {"snakemake-executor-plugin-slurm"}


def pyproject_pins() -> dict[str, str]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    project = data["project"]
    lines = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        lines.extend(extra)
    return _pins(lines)


def test_every_requirement_is_pinned_exactly():
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if not line or line.startswith("-"):
            continue
        assert PIN.match(line), f"requirements.txt: '{line}' is not pinned with =="


def test_pyproject_and_requirements_agree():
    req, proj = requirement_pins(), pyproject_pins()
    for name, version in proj.items():
        if name in req:
            assert req[name] == version, f"{name}: pyproject {version} vs requirements {req[name]}"
    missing = sorted(set(proj) - set(req))
    assert not missing, f"pinned in pyproject.toml but not installed by requirements.txt: {missing}"


def _env_pins(env: Path) -> dict[str, str]:
    spec = yaml.safe_load(env.read_text())
    pip_lines = [d for dep in spec["dependencies"] if isinstance(dep, dict) for d in dep.get("pip", [])]
    return _pins(pip_lines)


def test_conda_envs_agree_with_requirements():
    envs = sorted((ROOT / "envs").glob("*.yaml"))
    assert envs, "no conda environment files in envs/"
    assert GPU_ENVS <= {e.name for e in envs}, "the GPU rules' conda environment is missing"
    for env in envs:
        source = "requirements-gpu.txt" if env.name in GPU_ENVS else "requirements.txt"
        req, pins = requirement_pins(source), _env_pins(env)
        assert pins, f"{env.name} pins nothing"
        for name, version in pins.items():
            assert name in req, f"{env.name}: {name} is not in {source}"
            assert req[name] == version, f"{env.name}: {name}=={version}, {source} has {req[name]}"


def test_gpu_env_holds_the_whole_gpu_set_but_the_tools():
    req = requirement_pins("requirements-gpu.txt")
    pins = _env_pins(ROOT / "envs" / "eval-gpu.yaml")
    tools = {"snakemake", "pytest", "snakefmt"}
    assert sorted(set(req) - tools - set(pins)) == []


def test_gpu_set_differs_from_the_cpu_set_only_where_vllm_needs_it():
    cpu, gpu = requirement_pins(), requirement_pins("requirements-gpu.txt")
    assert set(gpu) - set(cpu) == GPU_ONLY
    assert set(cpu) - set(gpu) == CPU_ONLY
    differ = {name for name in set(cpu) & set(gpu) if cpu[name] != gpu[name]}
    assert differ == GPU_DIFFERS, f"pins that differ: {sorted(differ)}"


def test_gpu_lock_agrees_with_the_gpu_set():
    lock = _pins((ROOT / "requirements-gpu.lock").read_text().splitlines())
    gpu = requirement_pins("requirements-gpu.txt")
    for name, version in gpu.items():
        assert lock.get(name) == version, f"requirements-gpu.lock has {name}=={lock.get(name)}, requirements-gpu.txt {version}"
    text = (ROOT / "requirements-gpu.txt").read_text()
    assert re.search(r"^-c requirements-gpu\.lock$", text, re.M), "requirements-gpu.txt must use its lock"


def test_lock_agrees_with_requirements():
    lock = _pins((ROOT / "requirements.lock").read_text().splitlines())
    for name, version in requirement_pins().items():
        if name in lock:
            assert lock[name] == version, f"requirements.lock has {name}=={lock[name]}, requirements.txt {version}"
