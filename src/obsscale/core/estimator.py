"""The base of the library's estimators: scikit-learn's `BaseEstimator` (hyper-parameters from
`__init__`, `get_params` / `set_params`, `sklearn.base.clone`) plus a JSON-ready state for
freezing a fitted estimator and restoring it unchanged (the preregistration).

`to_state()` gives `{"class", "params", "learned", "lists"}`: the hyper-parameters and every
learned trailing-underscore attribute, arrays as lists, nested estimators as their own states;
`lists` names the learned attributes that were Python lists (the others come back as arrays, as
in states frozen before `lists` existed).
`from_state(state)` rebuilds the estimator without refitting.  An estimator whose learned state
is not arrays and numbers (tables, fitted sub-models) overrides `_encode_learned` and
`_decode_learned`."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from sklearn.base import BaseEstimator

_CLASSES: dict[str, type] = {}


def _encode(value: Any) -> Any:
    if isinstance(value, StatefulEstimator):
        return value.to_state()
    if isinstance(value, np.ndarray):
        return value.tolist() if value.dtype != object else [str(x) for x in value]
    if isinstance(value, (np.floating, np.integer, np.bool_)):
        return value.item()
    if isinstance(value, tuple):
        return list(value)
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict) and {"class", "params", "learned"} <= set(value):
        return _CLASSES[value["class"]].from_state(value)
    if isinstance(value, list):
        try:
            array = np.asarray(value)
        except ValueError:  # ragged: a list, not an array
            return value
        if array.dtype.kind == "O":
            return value
        # names (e.g. feature_names_in_) come back as object arrays, as scikit-learn keeps them
        return array.astype(object) if array.dtype.kind == "U" else array
    return value


class StatefulEstimator(BaseEstimator):
    """scikit-learn estimator with `to_state()` / `from_state()`."""

    _JSON_TYPES: ClassVar[tuple] = (int, float, str, bool, list, dict, type(None))

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        _CLASSES[cls.__name__] = cls

    def _encode_learned(self) -> dict[str, Any]:
        learned = {}
        for key, value in vars(self).items():
            if key.startswith("_") or not key.endswith("_"):
                continue
            value = _encode(value)
            if isinstance(value, self._JSON_TYPES):
                learned[key] = value
        return learned

    @classmethod
    def _decode_learned(cls, learned: dict[str, Any], lists: frozenset = frozenset()) -> dict[str, Any]:
        return {key: value if key in lists else _decode(value) for key, value in learned.items()}

    def to_state(self) -> dict[str, Any]:
        """The hyper-parameters and learned attributes, JSON-ready."""
        params = {key: _encode(value) for key, value in self.get_params(deep=False).items()}
        learned = self._encode_learned()
        lists = sorted(k for k in learned if isinstance(getattr(self, k, None), list))
        return {"class": type(self).__name__, "params": params, "learned": learned, "lists": lists}

    @classmethod
    def from_state(cls, state: dict[str, Any]):
        """The estimator of `to_state()`, fitted as it was; nothing is refitted."""
        obj = cls(**state["params"])
        for key, value in cls._decode_learned(state["learned"], frozenset(state.get("lists", ()))).items():
            setattr(obj, key, value)
        return obj
