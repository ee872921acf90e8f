"""obsscale: observational scaling laws and PassUntil task scaling laws.

The library behind the obsscale Snakemake workflow.  It does not import Snakemake: every rule calls
one function of this package, and every estimator follows the scikit-learn conventions (`fit`
returns self, learned state in trailing-underscore attributes, `transform`/`predict` never refit).
"""

__version__ = "0.1.0"

# `obsscale.predict(scores, laws=obsscale.load_frozen(path))` and `obsscale.FrozenLaw`, imported on
# first use (PEP 562) so that `import obsscale` stays light.
_LAZY = {
    "predict": ("obsscale.laws.predict", "predict"),
    "load_frozen": ("obsscale.laws.frozen", "load_frozen"),
    "FrozenLaw": ("obsscale.laws.frozen", "FrozenLaw"),
}
__all__ = ["__version__", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'obsscale' has no attribute '{name}'")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
