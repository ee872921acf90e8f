"""Every run configuration shipped under config/ plans with both shipped profiles and lints clean:
`snakemake -n --profile profiles/{local,slurm} --configfile <config>` and `snakemake --lint`, as a
new user would try them on a machine without GPUs (a dry run never stops on GPUs)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]
PROFILES = ("local", "slurm")
# Run configurations known to ship; any other YAML under config/ whose keys are all keys of the
# workflow's config schema is found too (run_configs), so a new example is checked without edits.
KNOWN = {"config/config.yaml", "config/evaluation-example.yaml", "config/ladder.yaml",
         "config/passuntil/example.yaml"}


def run_configs() -> list[str]:
    keys = set(yaml.safe_load((ROOT / "workflow/schemas/config.schema.yaml").read_text())["properties"])
    found = []
    for path in sorted((ROOT / "config").rglob("*.y*ml")):
        data = yaml.safe_load(path.read_text())
        if isinstance(data, dict) and data and set(data) <= keys:
            found.append(str(path.relative_to(ROOT)))
    return found


CONFIGS = run_configs()


def snakemake(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    return subprocess.run([*SNAKEMAKE, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)


def test_the_shipped_run_configurations_are_all_found():
    assert KNOWN <= set(CONFIGS), CONFIGS
    assert "config/suites.yaml" not in CONFIGS and "config/ladder/suites.yaml" not in CONFIGS


@pytest.mark.slow
@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("config", CONFIGS)
def test_config_plans_with_profile(config, profile):
    # In the checkout, as a user types it (the configs' paths are relative to it); a dry run
    # writes no results.
    result = snakemake("-n", "--quiet", "rules", "--profile", f"profiles/{profile}",
                       "--configfile", config)
    assert result.returncode == 0, f"{config} with profiles/{profile}:\n{(result.stdout + result.stderr)[-4000:]}"


@pytest.mark.slow
@pytest.mark.parametrize("config", CONFIGS)
def test_config_lints_clean(config):
    result = snakemake("--lint", "--configfile", config)
    assert result.returncode == 0, f"{config}:\n{(result.stdout + result.stderr)[-4000:]}"
    assert "Congratulations, your workflow is in a good condition!" in result.stdout + result.stderr
