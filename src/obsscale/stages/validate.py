"""Load-time validation of a whole workflow config, before any job runs.

`validate_config(config, root)` checks the config against workflow/schemas/config.schema.yaml
(every block closed, types and ranges), then everything the schema cannot see: names that refer to
other blocks, score tables and target CSVs read strictly, split columns and reference models that
exist in an experiment's model set, an experiment whose split leaves no training model, predictor
sets within the stored components, figure ids, every PassUntil task YAML with its data file, and
the evaluation stage's model sheet (with its local model folders).  The Snakefile calls it once
while the workflow is parsed, so `snakemake -n` stops on the same problems as a real run.

Every problem is one `InputError` whose message is one line naming the file, line and column, or
the config key path (`config experiments.my_task.split.column: ...`).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from obsscale.core.errors import ConfigError, InputError, did_you_mean
from obsscale.core.yamlfile import read_yaml

SCHEMA = "workflow/schemas/config.schema.yaml"
MODEL_SHEET_SCHEMA = "workflow/schemas/models.schema.yaml"
SUITES_SCHEMA = "workflow/schemas/suites.schema.yaml"
MAX_MESSAGE = 300
_PC = re.compile(r"^PC-(?:1\.\.)?(\d+)$")


def key_path(parts) -> str:
    """`experiments.emergent.targets[0].name` from a JSON-schema error path."""
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "(top level)"


def _err(path: str, message: str) -> ConfigError:
    return ConfigError(f"config {path}: {message}")


def _one_line(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 3] + "..."


def error_line(exc: BaseException) -> str:
    """An error as the one line the user sees (`Error: ...`): any line breaks of a message that
    quotes a parser's report are folded."""
    return "Error: " + "; ".join(part.strip() for part in str(exc).splitlines() if part.strip())


def check_schema(config: dict, schema: dict) -> None:
    """The first schema violation (in document order) as one ConfigError naming its key path."""
    import jsonschema

    validator = jsonschema.validators.validator_for(schema)(schema)
    errors = list(validator.iter_errors(config))
    if not errors:
        return
    # The first problem in document order (list items by index); at one place, an unknown key first
    # (a misspelt key also leaves a required one missing), else jsonschema's most relevant error.
    first = min(_order(e.absolute_path) for e in errors)
    here = [e for e in errors if _order(e.absolute_path) == first]
    unknown = [e for e in here if e.validator == "additionalProperties"]
    err = unknown[0] if unknown else jsonschema.exceptions.best_match(here)
    path = list(err.absolute_path)
    if err.validator == "additionalProperties" and isinstance(err.instance, dict):
        known = sorted(err.schema.get("properties", {}))
        unknown = sorted(k for k in err.instance if k not in known)
        if unknown:
            raise _err(key_path([*path, unknown[0]]),
                       f"unknown key{did_you_mean(unknown[0], known)} (known here: {', '.join(known)})")
    raise _err(key_path(path), _one_line(err.message))


def _order(path) -> tuple:
    return tuple((0, p, "") if isinstance(p, int) else (1, 0, str(p)) for p in path)


def _local_path(path: str) -> bool:
    """A model `path` that names a folder on disk rather than a hub id ("org/name")."""
    return path.startswith(("/", ".", "~")) or path.count("/") > 1


def _made_by_workflow(path: str) -> bool:
    return str(path).replace("\\", "/").startswith("results/")


def validate_config(config: dict, root: str | os.PathLike = ".") -> None:
    """Raise one InputError for the first problem of `config`; paths in it are relative to the
    working directory, schemas are found under `root` (the workflow's checkout)."""
    root = Path(root)
    check_schema(config, read_yaml(root / SCHEMA))
    from obsscale.capability import scores as D

    families = D.load_families(config["families"])
    tables = {}
    for name, block in config["scores"].items():
        if not _made_by_workflow(block["path"]):
            tables[name] = D.read_score_table(block["path"], block["metrics"], families)
    _check_capability(config, tables, families)
    from obsscale.stages.outputs import enabled_experiments

    for name, block in enabled_experiments(config).items():
        _check_experiment(name, block, config, tables, families)
    _check_law_figures(config)
    _check_selection(config, tables, families)
    _check_passuntil(config)
    _check_evaluation(config, root)


def _known(path: str, value, options, what: str) -> None:
    if value not in options:
        raise _err(path, f"'{value}' is not {what} (known: {', '.join(map(str, options))})"
                   f"{did_you_mean(value, options)}")


def _pc_count(name: str) -> int | None:
    m = _PC.match(str(name))
    return int(m.group(1)) if m else None


def _check_capability(config: dict, tables: dict, families) -> None:
    from obsscale.capability import scores as D

    cs = config["capability_space"]
    n = cs["n_components"]
    for name, block in cs["sets"].items():
        path = f"capability_space.sets.{name}"
        _known(f"{path}.scores", block["scores"], list(config["scores"]), "a score table of `scores:`")
        stored = config["scores"][block["scores"]]["metrics"]
        for i, m in enumerate(block["metrics"]):
            _known(f"{path}.metrics[{i}]", m, stored, f"a metric of score table '{block['scores']}'")
        table = tables.get(block["scores"])
        if table is not None:
            models = D.select_models(table, families, family_list=block["families"],
                                     include_misc_families=block.get("include_misc_families", False),
                                     include_preregistered=block.get("include_preregistered", False))
            for m in block["metrics"]:
                if models[m].isna().all():
                    raise _err(f"{path}.metrics", f"metric '{m}' has no observed value among the "
                               f"{len(models)} models of this set ({config['scores'][block['scores']]['path']})")
    fl = config.get("family_laws") or {}
    for i, s in enumerate(fl.get("sets", [])):
        _known(f"family_laws.sets[{i}]", s, list(cs["sets"]), "a set of capability_space.sets")
    for i, c in enumerate(fl.get("components", [])):
        for s in fl.get("sets", []):
            stored = min(n, len(cs["sets"][s]["metrics"]))  # the PCA keeps at most one per metric
            if (_pc_count(c) or 0) > stored:
                raise _err(f"family_laws.components[{i}]", f"'{c}' is beyond the {stored} components "
                           f"stored for set '{s}' (capability_space.n_components, its metrics)")
    figs = config.get("capability_figures") or {}
    for key in ("base_set", "instruct_set"):
        if figs.get(key):
            _known(f"capability_figures.{key}", figs[key], list(cs["sets"]), "a set of capability_space.sets")


def _check_experiment(name: str, block: dict, config: dict, tables: dict, families) -> None:
    from obsscale.laws.spec import resolve_experiment

    spec = resolve_experiment(name, block, config)
    path = f"experiments.{name}"
    n = spec.get("n_components", 5)
    for i, p in enumerate(spec["predictors"]):
        k = _pc_count(p)
        if k is not None and k > n:
            raise _err(f"{path}.predictors[{i}]", f"'{p}' needs {k} components, but only {n} are stored "
                       "(n_components of the experiment or of capability_space)")
        if k is not None and k > len(spec["metrics"]):
            raise _err(f"{path}.predictors[{i}]", f"'{p}' needs {k} components, but the experiment has "
                       f"only {len(spec['metrics'])} metrics")
    table = tables.get(spec["data"]["scores"])
    if table is None:
        return
    from obsscale.laws.frame import experiment_frame

    stored = config["scores"][spec["data"]["scores"]]
    read = table if set(spec["metrics"]) <= set(stored["metrics"]) else None  # else read and checked here
    frame = experiment_frame(spec, stored["path"], families, spec["data"]["targets_csv"], scores=read)
    for i, t in enumerate(spec["targets"]):
        where = f"{path}.targets[{i}].split" if "split" in t else f"{path}.split"
        _check_split(where, t.get("split") or spec["split"], frame, t, spec, table)
    for sname, sweep in (spec.get("sweeps") or {}).items():
        col = sweep["split"].get("column")
        if col is not None and col != "y" and col not in frame.columns:
            raise _err(f"{path}.sweeps.{sname}.split.column",
                       f"'{col}' is not a column of the experiment's data{did_you_mean(col, frame.columns)}")


def _check_split(where: str, split: dict, frame, target: dict, spec: dict, table) -> None:
    """The split's column and reference model exist, and it leaves at least one training model."""
    import numpy as np

    from obsscale.capability import scores as D
    from obsscale.laws.splits import SplitError, split_models

    col = split.get("column")
    if split["by"] in ("cutoff", "rank") and col is None:
        raise _err(where, f"a '{split['by']}' split needs a 'column'")
    if col is not None and col != "y" and col not in frame.columns:
        raise _err(f"{where}.column", f"'{col}' is not a column of the score table or the target CSV"
                   f"{did_you_mean(col, frame.columns)}")
    ref = split.get("reference_model")
    if ref is not None and ref not in set(table[D.MODEL]):
        raise _err(f"{where}.reference_model", f"'{ref}' is not a model of score table "
                   f"'{spec['data']['scores']}'{did_you_mean(ref, table[D.MODEL].tolist())}")
    rows = frame[frame[target["column"]].notna()]
    try:
        train = split_models(rows, split, rows[target["column"]].to_numpy(float)).to_numpy().copy()
    except SplitError as exc:
        raise _err(where, str(exc)) from None
    if spec["preregistered"] == "holdout_test":
        train &= ~rows["preregistered"].to_numpy(bool)
    if not np.any(train):
        raise _err(where, f"leaves no training model for target '{target['name']}' "
                   f"({len(rows)} models with a value; the split puts all of them in test)")
    if any(_pc_count(p) for p in spec["predictors"]):
        for m in spec["metrics"]:
            if rows.loc[train, m].isna().all():
                raise _err(where, f"metric '{m}' has no observed value among the {int(train.sum())} "
                           f"training models of target '{target['name']}'; the PCA cannot impute it")


def _check_law_figures(config: dict) -> None:
    """Every panel of `law_figures:` (config/figures.yaml) names an experiment that runs, one of its
    targets and one of its predictor sets; builders and jobs exist."""
    from obsscale.figures.spec import resolve_law_figures
    from obsscale.stages.outputs import enabled_experiments

    resolve_law_figures({**config, "experiments": enabled_experiments(config)})


def _check_selection(config: dict, tables: dict, families) -> None:
    sel = config.get("selection") or {}
    if not sel.get("enabled", False):
        return
    _known("selection.scores", sel["scores"], list(config["scores"]), "a score table of `scores:`")
    stored = config["scores"][sel["scores"]]["metrics"]
    for key in ("metrics",):
        for i, m in enumerate(sel[key]):
            _known(f"selection.{key}[{i}]", m, stored, f"a metric of score table '{sel['scores']}'")
    if sel["n_components"] > len(sel["metrics"]):
        raise _err("selection.n_components", f"{sel['n_components']} components from {len(sel['metrics'])} metrics")
    known = set(families.known_families)
    for gname, guide in sel["guide"].items():
        for i, fam in enumerate(guide.get("include_families", [])):
            if fam not in known:
                raise _err(f"selection.guide.{gname}.include_families[{i}]",
                           f"unknown family '{fam}'{did_you_mean(fam, known)}")
    ev = sel.get("evaluation") or {}
    if not ev.get("enabled", False):
        return
    for i, m in enumerate(ev["fit_metrics"]):
        _known(f"selection.evaluation.fit_metrics[{i}]", m, stored, f"a metric of score table '{sel['scores']}'")
    if ev["fit_components"] > len(ev["fit_metrics"]):
        raise _err("selection.evaluation.fit_components",
                   f"{ev['fit_components']} components from {len(ev['fit_metrics'])} metrics")
    from obsscale.capability.scores import read_csv_strict

    header = list(read_csv_strict(ev["downstream"]).columns)
    for i, t in enumerate(ev["targets"]):
        if t not in header:
            raise _err(f"selection.evaluation.targets[{i}]",
                       f"'{t}' is not a column of {ev['downstream']}{did_you_mean(t, header)}")


def _check_passuntil(config: dict) -> None:
    pu = config.get("passuntil") or {}
    if not pu.get("enabled", False):
        return
    from obsscale.passuntil.tasks import check_task_file

    for name, task_yaml in (pu.get("tasks") or {}).items():
        if not _made_by_workflow(task_yaml):  # the ladder writes its tasks
            check_task_file(task_yaml)
    for sname, series in (pu.get("series") or {}).items():
        names = set()
        for i, m in enumerate(series["models"]):
            where = f"passuntil.series.{sname}.models[{i}]"
            if m["name"] in names:
                raise _err(f"{where}.name", f"duplicate model name '{m['name']}'")
            names.add(m["name"])
            p = str(m["path"])
            if _local_path(p) and not _made_by_workflow(p) and not Path(p).expanduser().is_dir():
                raise _err(f"{where}.path", f"no model folder '{p}'")
    for i, run in enumerate(pu.get("runs") or []):
        _known(f"passuntil.runs[{i}].series", run["series"], list(pu.get("series") or {}), "a series")
        _known(f"passuntil.runs[{i}].task", run["task"], list(pu.get("tasks") or {}), "a task")


def _check_evaluation(config: dict, root: Path) -> None:
    ev = config.get("evaluation") or {}
    if not ev.get("enabled", False):
        return
    from obsscale.evaluation.plan import plan_evaluation

    for key in ("model_sheet", "suites_file"):
        _readable_text(f"evaluation.{key}", ev[key])
    plan = plan_evaluation(ev, config["families"], root / MODEL_SHEET_SCHEMA, root / SUITES_SCHEMA)
    for _, row in plan.models.iterrows():
        model = str(row["model"])
        if _local_path(model) and not _made_by_workflow(model) and not Path(model).expanduser().is_dir():
            raise InputError(f"{ev['model_sheet']}: row {row.get('row', '?')}, field 'model': "
                             f"no model folder '{model}'")



def _readable_text(key: str, path: str) -> None:
    """A file named by the config exists, is a file, and is UTF-8 text (else one line naming it)."""
    p = Path(path)
    if not p.exists():
        raise _err(key, f"file '{path}' not found")
    if p.is_dir():
        raise _err(key, f"'{path}' is a folder, not a file")
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise _err(key, f"'{path}' cannot be read ({exc.strerror})") from None
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise InputError(f"{path}: line {line}: not UTF-8 text") from None
