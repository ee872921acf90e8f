"""Observational scaling laws (paper §4–5): the law estimator (`law`: links, optimisers, reference
line, bootstrap), train/test splits (`splits`) and the experiments that config blocks describe
(`experiments`: specs, data join, fits, sweeps and preregistration)."""
