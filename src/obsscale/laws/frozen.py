"""Frozen laws: a fitted law restored from its preregistration record (results/prereg/*.json) and
applied to new models unchanged, with its band, no refit and no training data.

    >>> from obsscale.laws.frozen import FrozenLaw, load_frozen
    >>> law = FrozenLaw.from_json("results/prereg/emergent.json", target="word_unscramble")
    >>> y_hat, lo, hi = law.predict(scores, return_band=True)     # scores: a score-table frame
    >>> laws = load_frozen("results/prereg")                     # every frozen law of a folder

A record holds, per law: the parameters, the bootstrap refits' parameters and the parameter
covariance (the bands), the capability space (imputer and PCA state), the reference line of the
equivalent-compute axis, the training range of the capability index, and the fitted curve with its
points (for figures).  Records written before the bands were stored still predict; their band is
empty (`band_method` "none").
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from obsscale.capability import scores as D
from obsscale.core.errors import InputError, UnknownNameError, did_you_mean
from obsscale.laws.bootstrap import BootstrapBand
from obsscale.laws.law import format_form
from obsscale.laws.reference import ReferenceLine
from obsscale.laws.prereg import frozen_law, law_forms as _law_forms
from obsscale.laws.spec import parse_predictors

# Laws with these statuses predict nothing: their curve is a step or their parameters are not
# identifiable, so a number would mislead.
NO_PREDICTION_STATUSES = ("diverged", "degenerate")


class FrozenLawError(InputError):
    """A frozen-law file that cannot be read, or a law name that is not in it."""


def _array(values) -> np.ndarray:
    """A JSON list (null for NaN) as a float array."""
    return np.array(values, dtype=float)


class FrozenLaw:
    """One frozen (experiment, target, predictor set) law, in the scikit-learn style: `predict(X)`
    never refits; the learned state is in trailing-underscore attributes.

    `X` is a frame in the score-table layout: the law's metric columns (PC laws; missing cells are
    imputed with the frozen imputer) or its compute column (`FLOPs (1E21)` / `Model Size (B)`)."""

    def __init__(self, entry: dict, experiment: str = "", frozen: str = "", data_sha256: str = "",
                 main_predictors: str = ""):
        self.entry = entry
        self.experiment = experiment
        self.frozen = frozen
        self.data_sha256 = data_sha256
        self.main_predictors = main_predictors
        self.law_, self.space_ = frozen_law(entry)
        self.predictors_ = parse_predictors(entry["predictors"])
        self.target_ = dict(entry["target"])
        self.status_ = entry.get("status", "ok")
        r = entry.get("reference_line")
        self.reference_ = ReferenceLine(r["family"], r["slope"], r["intercept"], r["r2"], r.get("models", [])) \
            if r else None
        self.level_ = float(entry.get("band_level", 0.95))
        boot = entry.get("bootstrap")
        self.bootstrap_ = None
        if boot and boot.get("params"):
            params = _array(boot["params"])
            if np.isfinite(params).all(axis=1).sum() >= 2:
                self.bootstrap_ = BootstrapBand(params, self.law_.link, self.law_.n_features_in_, float(boot["level"]))
                self.level_ = float(boot["level"])
        cov = entry.get("covariance")
        self.covariance_ = _array(cov) if cov else None
        if self.covariance_ is not None and np.isfinite(self.covariance_).all():
            self.law_.covariance_ = self.covariance_
        lo, hi = entry.get("index_range") or (None, None)
        self.index_range_ = (np.nan if lo is None else float(lo), np.nan if hi is None else float(hi))

    # -- identity ----------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return f"{self.experiment}/{self.target_['name']}/{self.predictors_.name}"

    @property
    def is_main(self) -> bool:
        return self.predictors_.name == (self.main_predictors or self.predictors_.name)

    @property
    def metrics(self) -> list[str]:
        return list(self.space_.metrics) if self.space_ is not None else []

    @property
    def input_columns(self) -> list[str]:
        """The columns of X this law reads."""
        return self.metrics if self.predictors_.kind == "pcs" else [self.predictors_.column]

    @property
    def band_method(self) -> str:
        if self.bootstrap_ is not None:
            return "bootstrap"
        if self.covariance_ is not None and np.isfinite(self.covariance_).all():
            return "delta"
        return "none"

    def get_params(self, deep: bool = True) -> dict:
        return {"entry": self.entry, "experiment": self.experiment, "frozen": self.frozen,
                "data_sha256": self.data_sha256, "main_predictors": self.main_predictors}

    def __repr__(self) -> str:
        return f"FrozenLaw({self.name!r}, status={self.status_!r}, band={self.band_method!r})"

    # -- construction ------------------------------------------------------------------------------
    @classmethod
    def from_json(cls, source: str | os.PathLike | dict, target: str | None = None,
                  predictors: str | None = None) -> "FrozenLaw":
        """One law of a frozen-law record (a path or the parsed document): the experiment's only
        target unless `target` is given, its main predictor set unless `predictors` is given."""
        laws = laws_of(source)
        if not laws:
            raise FrozenLawError(f"{_where(source)}: the record holds no fitted law")
        targets = sorted({law.target_["name"] for law in laws})
        if target is None and len(targets) > 1:
            raise FrozenLawError(f"{_where(source)}: several targets {targets}; name one with target=")
        target = target or targets[0]
        pick = [law for law in laws if law.target_["name"] == target]
        if not pick:
            raise UnknownNameError(f"{_where(source)}: no target '{target}' (known: {targets})"
                                   f"{did_you_mean(target, targets)}")
        if predictors is None:
            main = [law for law in pick if law.is_main]
            return (main or pick)[0]
        names = [law.predictors_.name for law in pick]
        if predictors not in names:
            raise UnknownNameError(f"{_where(source)}: target '{target}' has no law on '{predictors}' "
                                   f"(known: {names}){did_you_mean(predictors, names)}")
        return pick[names.index(predictors)]

    # -- prediction --------------------------------------------------------------------------------
    def _columns(self, X: pd.DataFrame) -> None:
        missing = [c for c in self.input_columns if c not in X.columns]
        if missing:
            raise InputError(f"law {self.name}: the scores have no column {missing}; it needs {self.input_columns}")

    def components(self, X: pd.DataFrame) -> np.ndarray:
        """Every stored PC of the law's capability space for each row (not only the K the law uses);
        rows with none of the law's metrics are NaN."""
        values = X[self.metrics].to_numpy(float)
        out = np.full((len(X), self.space_.pca_.n_components_), np.nan)
        ok = ~np.isnan(values).all(axis=1)
        if ok.any():
            out[ok] = self.space_.pca_.transform(self.space_.imputer_.transform(values[ok]))
        return out

    def transform(self, X: pd.DataFrame) -> np.ndarray:
        """The law's predictors for each row: its first K PCs, or log10 of its compute column.
        Rows with none of the law's metrics (or no compute value) are NaN."""
        self._columns(X)
        if self.predictors_.kind == "compute":
            with np.errstate(divide="ignore", invalid="ignore"):
                return np.log10(X[self.predictors_.column].to_numpy(float) + 1e-9).reshape(-1, 1)
        return self.components(X)[:, : self.predictors_.k]

    def decision_function(self, X: pd.DataFrame) -> np.ndarray:
        """The capability index P = α + βᵀS of each row."""
        return self.law_.intercept_ + self.transform(X) @ self.law_.coef_

    def predict(self, X: pd.DataFrame, return_band: bool = False):
        """ŷ (normalised to the target's [floor, ceiling]) for each row; with `return_band`, also
        the band's lower and upper edges (bootstrap percentiles, else delta method, else NaN).
        Laws whose status is diverged or degenerate predict NaN."""
        y, lo, hi = self.predict_at(self.transform(X), band=return_band)
        return (y, lo, hi) if return_band else y

    def predict_at(self, S: np.ndarray, band: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """ŷ and band at given predictor values S (rows with a NaN predictor give NaN)."""
        y = np.full(len(S), np.nan)
        lo, hi = y.copy(), y.copy()
        ok = np.isfinite(S).all(axis=1)
        if self.status_ not in NO_PREDICTION_STATUSES and ok.any():
            y[ok] = self.law_.predict(S[ok])
            if band:
                lo[ok], hi[ok] = self.band(S[ok])
        return y, lo, hi

    def band(self, S: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The band at given predictor values S (not scores)."""
        method = self.band_method
        if method == "bootstrap":
            return self.bootstrap_.band(S)
        if method == "delta":
            return self.law_.predict_delta_band(S, level=self.level_)
        nan = np.full(len(S), np.nan)
        return nan, nan.copy()

    def equivalent_log10_flops(self, index: np.ndarray, S: np.ndarray) -> np.ndarray:
        """Log10 equivalent FLOPs on the reference family's axis (PC laws); log10 FLOPs itself for
        the FLOPs law; NaN for the size law or a law without a reference line."""
        if self.predictors_.kind == "compute":
            return S[:, 0] if self.predictors_.column == D.FLOPS else np.full(len(S), np.nan)
        if self.reference_ is None:
            return np.full(len(index), np.nan)
        return self.reference_.equivalent_log10_flops(index)


def _where(source) -> str:
    return "frozen-law record" if isinstance(source, dict) else str(source)


def read_record(path: str | os.PathLike) -> dict:
    path = Path(path)
    if not path.exists():
        raise FrozenLawError(f"{path}: frozen-law file not found")
    try:
        doc = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise FrozenLawError(f"{path}: not a frozen-law JSON ({exc})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("laws"), list) or "experiment" not in doc:
        raise FrozenLawError(f"{path}: not a frozen-law record (needs 'experiment' and 'laws')")
    return doc


def laws_of(source: str | os.PathLike | dict) -> list[FrozenLaw]:
    doc = source if isinstance(source, dict) else read_record(source)
    main = (doc.get("spec") or {}).get("main_predictors", "")
    return [FrozenLaw(e, doc["experiment"], doc.get("frozen", ""), doc.get("data_sha256", ""), main)
            for e in doc["laws"]]


def record_paths(path: str | os.PathLike) -> list[Path]:
    """The frozen-law records of a file or a folder (every *.json in it)."""
    path = Path(path)
    if path.is_dir():
        files = sorted(path.glob("*.json"))
        if not files:
            raise FrozenLawError(f"{path}: no frozen-law records (*.json) in this folder")
        return files
    if not path.exists():
        raise FrozenLawError(f"{path}: no such frozen-law file or folder (the workflow writes the frozen laws "
                             "to results/prereg/: run `snakemake --cores 2` first, or name another with --laws)")
    return [path]


def load_frozen(path: str | os.PathLike = "results/prereg", select: Sequence[str] | str | None = None,
                main_only: bool = False) -> list[FrozenLaw]:
    """Every frozen law of a record or a folder of records.

    `select` keeps laws by name: `experiment`, `experiment/target` or `experiment/target/predictors`
    (one or a list; "all" or None keeps every law); an unknown name is an error.  `main_only`
    keeps each experiment's main predictor set."""
    laws = [law for p in record_paths(path) for law in laws_of(p)]
    if main_only:
        laws = [law for law in laws if law.is_main]
    return select_laws(laws, select)


def select_laws(laws: list[FrozenLaw], select: Sequence[str] | str | None) -> list[FrozenLaw]:
    if select is None or select == "all" or list(select) == ["all"]:
        return laws
    names = [select] if isinstance(select, str) else list(select)
    known = _known_names(laws)
    chosen: list[FrozenLaw] = []
    for name in names:
        hits = [law for law in laws if law.name == name or law.name.startswith(f"{name}/")]
        if not hits:
            raise UnknownNameError(f"unknown law '{name}' (laws are named experiment[/target[/predictors]]; "
                                   f"experiments: {sorted({law.experiment for law in laws})})"
                                   f"{did_you_mean(name, known)}")
        chosen += [law for law in hits if law not in chosen]
    return chosen


def _known_names(laws: Iterable[FrozenLaw]) -> list[str]:
    names: dict[str, None] = {}
    for law in laws:
        names.setdefault(law.experiment, None)
        names.setdefault(f"{law.experiment}/{law.target_['name']}", None)
        names.setdefault(law.name, None)
    return list(names)


def law_forms(laws: Sequence[FrozenLaw]) -> list[dict]:
    """Each law's identity, status and band method with Table C.1's three forms (JSON-ready)."""
    out = []
    for law in laws:
        row = {"law": law.name, "experiment": law.experiment, "target": law.target_["name"],
               "label": law.target_.get("label", ""), "predictors": law.predictors_.name, "main": law.is_main,
               "status": law.status_, "band_method": law.band_method, "frozen": law.frozen,
               "data_sha256": law.data_sha256, "metrics": law.metrics,
               "index_train_range": list(law.index_range_)}
        forms = _law_forms(law.entry, law.law_, law.space_)
        if law.predictors_.kind == "compute":  # x is the law's own log10 compute column
            lw = law.law_
            forms["form_compute"] = format_form(lw.coef_, lw.intercept_, lw.h_, ["x"])
            forms["compute_column"] = law.predictors_.column
        row.update({k: (float(v) if isinstance(v, (np.floating, float)) else v) for k, v in forms.items()})
        out.append(row)
    return out
