"""obsscale: observational scaling laws and PassUntil task scaling laws.

The library behind the obsscale Snakemake workflow.  It does not import Snakemake: every rule calls
one function of this package, and every estimator follows the scikit-learn conventions (`fit`
returns self, learned state in trailing-underscore attributes, `transform`/`predict` never refit).
"""

__version__ = "0.1.0"
