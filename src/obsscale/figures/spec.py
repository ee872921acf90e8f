"""Figures as config: the `law_figures:` block (config/figures.yaml) resolved against `experiments:`.

Each entry maps a figure id to its builder and its panels.  A panel is written
`experiment/target/predictors`; `resolve_law_figures` checks every one against the experiments of the
config when the workflow is parsed, so a renamed or missing experiment, target or predictor set is a
`ConfigError` naming the key path (`law_figures.fig4.panels[1][2]`), never an empty panel.

This module is imported while Snakemake parses the workflow: it imports nothing heavy.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from obsscale.core.errors import ConfigError, did_you_mean

# obsscale.laws.spec.DEFAULTS["predictors"] (not imported: that module pulls in scipy; a test
# checks that the two agree).
DEFAULT_PREDICTORS = ("PC-1..3",)
DEFAULT_JOBS = 2


class Panel(NamedTuple):
    experiment: str
    target: str
    predictors: str

    def __str__(self) -> str:
        return f"{self.experiment}/{self.target}/{self.predictors}"


@dataclass(frozen=True)
class SweepRow:
    experiment: str
    sweep: str
    targets: tuple[str, ...]


@dataclass
class FigureSpec:
    """One figure of the config: its builder, its panels (rows; None is an empty cell), the sweeps
    it draws (builder `sweeps`), labels, the paper section and the drawing job."""

    id: str
    builder: str
    section: str = ""
    panels: list[list[Panel | None]] = field(default_factory=list)
    sweeps: list[SweepRow] = field(default_factory=list)
    title: str = ""
    ylabel: str = ""
    job: int | None = None

    @property
    def cost(self) -> int:
        """Panels to draw: the measure the jobs are balanced by."""
        return sum(p is not None for row in self.panels for p in row) + sum(len(s.targets) for s in self.sweeps)

    def experiments(self) -> list[str]:
        names = [p.experiment for row in self.panels for p in row if p is not None]
        return list(dict.fromkeys(names + [s.experiment for s in self.sweeps]))


def figure_label(stem: str) -> str:
    """`fig4` → `Fig 4`, `figC3` → `Fig C.3`, `fig2a_explained_variance` → `Fig 2a`."""
    m = re.match(r"fig(C?)(\d+)([a-z]?)", stem)
    if not m:
        return stem
    return f"Fig {m.group(1) + '.' if m.group(1) else ''}{m.group(2)}{m.group(3)}"


def _targets(block: dict) -> list[str]:
    return [t["name"] for t in block.get("targets") or [] if isinstance(t, dict) and "name" in t]


def _check_name(kind: str, name: str, known: list[str], path: str, where: str) -> None:
    if name not in known:
        raise ConfigError(f"{path}: {kind} '{name}' is not {where} (known: {', '.join(known) or 'none'})"
                          f"{did_you_mean(name, known)}")


def parse_panel(text: Any, experiments: dict[str, dict], path: str) -> Panel | None:
    if text is None:
        return None
    parts = str(text).split("/")
    if len(parts) != 3 or not all(parts):
        raise ConfigError(f"{path}: '{text}' is not a panel; write experiment/target/predictors")
    exp, target, preds = parts
    _check_name("experiment", exp, list(experiments), path, "configured in `experiments:`")
    block = experiments[exp] or {}
    _check_name("target", target, _targets(block), path, f"a target of experiment '{exp}'")
    _check_name("predictor set", preds, list(block.get("predictors") or DEFAULT_PREDICTORS), path,
                f"fitted in experiment '{exp}'")
    return Panel(exp, target, preds)


def _parse_sweep(row: dict, experiments: dict[str, dict], path: str) -> SweepRow:
    exp = row.get("experiment")
    _check_name("experiment", exp, list(experiments), f"{path}.experiment", "configured in `experiments:`")
    sweeps = (experiments[exp] or {}).get("sweeps") or {}
    _check_name("sweep", row.get("sweep"), list(sweeps), f"{path}.sweep", f"a sweep of experiment '{exp}'")
    swept = sweeps[row["sweep"]].get("targets") or _targets(experiments[exp])
    for i, t in enumerate(row.get("targets") or []):
        _check_name("target", t, list(swept), f"{path}.targets[{i}]", f"swept in '{exp}.sweeps.{row['sweep']}'")
    return SweepRow(exp, row["sweep"], tuple(row.get("targets") or swept))


def parse_figure(fid: str, entry: dict, experiments: dict[str, dict]) -> FigureSpec:
    path = f"law_figures.{fid}"
    panels = []
    for i, row in enumerate(entry.get("panels") or []):
        if not isinstance(row, list):
            raise ConfigError(f"{path}.panels[{i}]: a row of panels is a list")
        panels.append([parse_panel(p, experiments, f"{path}.panels[{i}][{j}]") for j, p in enumerate(row)])
    sweeps = [_parse_sweep(r, experiments, f"{path}.sweeps[{i}]") for i, r in enumerate(entry.get("sweeps") or [])]
    spec = FigureSpec(id=fid, builder=entry.get("builder", "fit_grid"), section=entry.get("section", ""),
                      panels=panels, sweeps=sweeps, title=entry.get("title", ""), ylabel=entry.get("ylabel", ""),
                      job=entry.get("job"))
    if spec.cost == 0:
        raise ConfigError(f"{path}: no panels (give `panels:` or, for builder `sweeps`, `sweeps:`)")
    return spec


def resolve_law_figures(config: dict) -> dict[str, FigureSpec]:
    """Every entry of `law_figures:` checked against `experiments:` (ConfigError with the key path)."""
    figures = config.get("law_figures") or {}  # `law_figures: []` or null (replacing, in a --configfile): none
    if not isinstance(figures, dict):
        raise ConfigError("law_figures: a mapping of figure id -> {builder, panels, ...} (config/figures.yaml)")
    experiments = config.get("experiments") or {}
    specs = {fid: parse_figure(fid, entry or {}, experiments) for fid, entry in figures.items()}
    n_jobs = law_figure_jobs(config)
    for spec in specs.values():
        if spec.job is not None and not 0 <= spec.job < n_jobs:
            raise ConfigError(f"law_figures.{spec.id}.job: {spec.job} is not in 0 … {n_jobs - 1} "
                              f"(law_figure_jobs = {n_jobs})")
    return specs


def overview_cost(block: dict) -> int:
    """Panels of an experiment's overview figure: per target, its main predictor set and the FLOPs
    baseline (obsscale.figures.laws.experiment_overview)."""
    block = block or {}
    return len(block.get("targets") or []) * min(2, len(block.get("predictors") or DEFAULT_PREDICTORS))


def law_figure_jobs(config: dict) -> int:
    return int(config.get("law_figure_jobs", DEFAULT_JOBS))


def assign_jobs(costs: dict[str, int], n_jobs: int, fixed: dict[str, int] | None = None) -> dict[str, int]:
    """Figure id → drawing job.  Pinned figures (`fixed`) keep their job; the others go, largest
    first (ties by id), to the job with the least work so far (ties to the lowest job).  The result
    depends on the ids and their costs, not on the order the config lists them in."""
    fixed = dict(fixed or {})
    load = [0] * n_jobs
    for fid, job in fixed.items():
        load[job] += costs.get(fid, 1)
    jobs = dict(fixed)
    for fid in sorted((f for f in costs if f not in fixed), key=lambda f: (-costs[f], f)):
        job = min(range(n_jobs), key=lambda j: (load[j], j))
        jobs[fid] = job
        load[job] += costs[fid]
    return jobs




# The report's grouping of the figures that are not in `law_figures:` (their stage draws a fixed
# set): paper figure number (figure_label of the stem) → the paper section.  Law figures carry their own `section:`.
SECTIONS = {
    "Fig 2a": "3 Capability space", "Fig 2b": "3 Capability space", "Fig 3": "3 Capability space",
    "Fig 8": "3 Capability space", "Fig C.1a": "3 Capability space", "Fig C.1b": "3 Capability space",
    "Fig C.2": "3 Capability space", "Fig C.4": "3 Capability space",
    "Fig 7a": "5 Selecting models", "Fig 7b": "5 Selecting models", "Fig C.18": "5 Selecting models",
    "Fig C.19": "C.8 Additional analyses",
}
OVERVIEW_SECTION = "Experiment overviews"
PASSUNTIL_SECTION = "PassUntil task scaling"
OTHER_SECTION = "Other figures"
TABLES_SECTION = "Tables"


def report_subcategory(stem: str) -> str:
    """The report's subcategory of a figure: its paper number, zero-padded so that the report's
    alphabetical order is the paper's (`Fig C.03` before `Fig C.11`)."""
    label = figure_label(stem)
    m = re.match(r"Fig C\.(\d+)(.*)", label)
    return f"Fig C.{int(m.group(1)):02d}{m.group(2)}" if m else label


def report_section(stem: str, config: dict | None = None) -> str:
    entry = ((config or {}).get("law_figures") or {}).get(stem)
    if isinstance(entry, dict) and entry.get("section"):
        return str(entry["section"])
    if stem.startswith("fits_"):
        return OVERVIEW_SECTION
    if stem.startswith("passuntil_"):
        return PASSUNTIL_SECTION
    return SECTIONS.get(figure_label(stem), OTHER_SECTION)
