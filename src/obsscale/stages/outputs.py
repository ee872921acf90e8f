"""The workflow's final targets as a function of the config.

`rule all` asks for `final_output(config)`: each stage contributes the files its config block
turns on, so enabling an analysis is a config change.  Kept here (not in the rule files) so that
it is testable without Snakemake.
"""

from __future__ import annotations

import os
from typing import Any, Callable

# Figure stems of the capability stage (rendered by obsscale.figures.capability).  This module is
# imported when Snakemake parses the workflow, so it imports nothing heavy.
CAPABILITY_FIGURES = (
    "fig2a_explained_variance",
    "fig2b_loadings",
    "fig3_pc1_vs_flops_by_family",
    "figC2_pc2_vs_flops_by_family",
    "figC2_pc3_vs_flops_by_family",
    "fig8_pc1_vs_flops_all_families",
    "figC4_benchmarks_vs_flops",
)
INSTRUCT_FIGURES = ("figC1a_instruct_explained_variance", "figC1b_instruct_loadings")

Config = dict[str, Any]
FIGURE_EXTENSIONS = ("png", "pdf", "csv")


def figure_files(stem: str) -> list[str]:
    return [f"results/figures/{stem}.{ext}" for ext in FIGURE_EXTENSIONS]


def score_targets(config: Config) -> list[str]:
    return [f"results/scores/{name}.csv" for name in config.get("scores", {})]


def capability_targets(config: Config) -> list[str]:
    targets = []
    for name in config.get("capability_space", {}).get("sets", {}):
        targets += [f"results/pca/{name}/{f}.csv" for f in ("explained_variance", "loadings", "scores", "imputed")]
    for name in config.get("family_laws", {}).get("sets", []):
        targets.append(f"results/family_laws/{name}/pc_vs_log10_flops.csv")
    return targets


def capability_figure_stems(config: Config) -> list[str]:
    figs = config.get("capability_figures")
    if not figs:
        return []
    return list(CAPABILITY_FIGURES) + (list(INSTRUCT_FIGURES) if figs.get("instruct_set") else [])


def capability_figure_targets(config: Config) -> list[str]:
    return [f for stem in capability_figure_stems(config) for f in figure_files(stem)]


# The paper figures of the scaling laws (obsscale.figures.laws.PAPER_FIGURES; a test keeps the two
# in step): the ids `law_figures:` may name.
LAW_FIGURES = ("fig4", "fig5", "fig6", "fig9", "figC3", "figC5", "figC7", "figC8", "figC9", "figC10",
               "figC11", "figC12", "figC13", "figC14", "figC15", "figC16", "figC20", "figC21", "figC22")


def enabled_experiments(config: Config) -> dict[str, dict]:
    """The experiments that run: every block of `experiments:` without `enabled: false`."""
    return {name: block for name, block in (config.get("experiments") or {}).items()
            if (block or {}).get("enabled", True)}


def overview_experiments(config: Config) -> list[str]:
    """Experiments that get an overview figure of all their fits (`overview`, default true)."""
    return [name for name, block in enabled_experiments(config).items()
            if (block or {}).get("overview", True)]


def law_targets(config: Config) -> list[str]:
    """Observational scaling laws: fits, predictions, frozen laws, Table C.1 and their figures."""
    experiments = list(enabled_experiments(config))
    if not experiments:
        return []
    targets = []
    for exp in experiments:
        targets += [f"results/fits/{exp}.csv", f"results/fits/{exp}/predictions.csv",
                    f"results/prereg/{exp}.json", f"results/prereg/{exp}_scored.csv"]
    targets.append("results/prereg/table_c1.csv")
    for stem in [*config.get("law_figures", []), *(f"fits_{exp}" for exp in overview_experiments(config))]:
        targets += figure_files(stem)
    return targets
PASSUNTIL_FIGURES = (
    "passuntil_pu_vs_n",
    "passuntil_loglog",
    "passuntil_instances",
    "passuntil_resolution",
    "passuntil_sampling_cost",
)


def passuntil_runs(config: Config) -> list[tuple[str, str]]:
    """(series, task) pairs of the PassUntil stage: `runs`, else every series with every task."""
    pu = config.get("passuntil") or {}
    if pu.get("runs"):
        return [(r["series"], r["task"]) for r in pu["runs"]]
    return [(s, t) for s in pu.get("series", {}) for t in pu.get("tasks", {})]


def passuntil_targets(config: Config) -> list[str]:
    pu = config.get("passuntil") or {}
    if not pu.get("enabled", False):
        return []
    out = []
    for series, task in passuntil_runs(config):
        d = f"results/passuntil/{series}/{task}"
        out += [f"{d}/samples/{m['name']}.jsonl" for m in pu["series"][series]["models"]]
        out += [f"{d}/estimates.csv", f"{d}/law.csv"]
    return out + [f for stem in PASSUNTIL_FIGURES for f in figure_files(stem)]


def evaluation_targets(config: Config) -> list[str]:
    """The evaluation stage's tables (docs/evaluation.md); none unless `evaluation.enabled`."""
    ev = config.get("evaluation") or {}
    if not ev.get("enabled", False):
        return []
    return [f"results/eval/{ev['name']}/scores_tidy.csv", f"results/eval/{ev['name']}/scores_wide.csv"]


SELECTION_FIGURES = ("fig7a_selection_curve", "fig7b_selected_fits", "figC18_random_fits")


def selection_targets(config: Config) -> list[str]:
    """Model-subset selection: the guide (Table 1) and, when enabled, the held-out evaluation."""
    cfg = config.get("selection") or {}
    if not cfg.get("enabled", False):
        return []
    targets = ["results/selection/table1.csv"]
    if cfg.get("compare_heuristic", True):
        targets.append("results/selection/greedy_vs_exact.csv")
    if (cfg.get("evaluation") or {}).get("enabled", False):
        targets.append("results/selection/curve.csv")
        targets += [f for stem in SELECTION_FIGURES for f in figure_files(stem)]
    return targets


def ladder_targets(config: Config) -> list[str]:
    """The ladder's trained models and its model sheet (docs/ladder.md); [] unless enabled."""
    ladder = config.get("ladder") or {}
    if not ladder.get("enabled", False):
        return []
    out = ladder.get("output_dir", "results/ladder")
    return [f"{out}/models/{m['name']}" for m in ladder.get("models", [])] + [f"{out}/models.tsv"]


# Each stage's contribution, in pipeline order.
STAGES: list[Callable[[Config], list[str]]] = [
    ladder_targets,
    evaluation_targets,
    score_targets,
    capability_targets,
    capability_figure_targets,
    law_targets,
    selection_targets,
    passuntil_targets,
]


def final_output(config: Config) -> list[str]:
    targets: list[str] = []
    for stage in STAGES:
        for target in stage(config):
            if target not in targets:
                targets.append(target)
    return targets


def export_library_path(src: str) -> None:
    """Put this checkout's library first on the PYTHONPATH that the rules' jobs inherit."""
    current = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (src, current) if p)
