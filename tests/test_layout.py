"""The tree as the README describes it: result paths are spelled once (obsscale.stages.outputs),
and the rule files of the analysis stages name their files through those helpers."""

from __future__ import annotations

import re
from pathlib import Path

from obsscale.stages import outputs

ROOT = Path(__file__).resolve().parents[1]
RULES = ROOT / "workflow" / "rules"
# Rule files whose every results/ path comes from obsscale.stages.outputs.
# Every rule file but the ladder's, whose folder is configurable (`ladder.output_dir`).
PATH_FREE_RULES = sorted(p.name for p in RULES.glob("*.smk") if p.name != "ladder.smk")
# A quoted results/ path (a prefix test such as `startswith("results/")` names no file).
PATH_LITERAL = re.compile(r"""(?<!startswith\()["']results/""")


def test_rule_files_spell_no_result_path():
    for name in PATH_FREE_RULES:
        for number, line in enumerate((RULES / name).read_text().splitlines(), 1):
            assert not PATH_LITERAL.search(line), f"{name}:{number} spells a results/ path: {line.strip()}"


def test_path_helpers_keep_wildcards_and_agree_with_final_targets():
    assert outputs.pca_file("{set}", "scores") == "results/pca/{set}/scores.csv"
    assert outputs.fit_file("{experiment}", "curves") == "results/fits/{experiment}/curves.csv"
    config = {"scores": {"base": {}}, "capability_space": {"sets": {"base8": {}}},
              "family_laws": {"sets": ["base8"]}, "experiments": {"e": {}},
              "selection": {"enabled": True, "evaluation": {"enabled": True}}}
    final = set(outputs.final_output(config))
    expected = {outputs.score_table("base"), outputs.family_laws_table("base8"), outputs.fits_table("e"),
                outputs.prereg_json("e"), outputs.prereg_scored("e"), outputs.PREREG_TABLE,
                outputs.SELECTION_FILES["table"], outputs.SELECTION_FILES["curve"],
                *(outputs.pca_file("base8", t) for t in outputs.PCA_TABLES)}
    assert expected <= final
    assert all(path.startswith("results/") for path in final)
