"""The project's pins agree everywhere they are written: pyproject.toml, requirements.txt, envs/."""

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


def requirement_pins() -> dict[str, str]:
    return _pins((ROOT / "requirements.txt").read_text().splitlines())


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
    missing = sorted(set(proj) - set(req) - {"vllm"})  # vllm is the optional GPU backend
    assert not missing, f"pinned in pyproject.toml but not installed by requirements.txt: {missing}"


def test_conda_envs_agree_with_requirements():
    req = requirement_pins()
    envs = sorted((ROOT / "envs").glob("*.yaml"))
    assert envs, "no conda environment files in envs/"
    for env in envs:
        spec = yaml.safe_load(env.read_text())
        pip_lines = [d for dep in spec["dependencies"] if isinstance(dep, dict) for d in dep.get("pip", [])]
        pins = _pins(pip_lines)
        assert pins, f"{env.name} pins nothing"
        for name, version in pins.items():
            assert name in req, f"{env.name}: {name} is not in requirements.txt"
            assert req[name] == version, f"{env.name}: {name}=={version}, requirements.txt has {req[name]}"


def test_lock_agrees_with_requirements():
    lock = _pins((ROOT / "requirements.lock").read_text().splitlines())
    for name, version in requirement_pins().items():
        if name in lock:
            assert lock[name] == version, f"requirements.lock has {name}=={lock[name]}, requirements.txt {version}"
