"""Observational scaling laws (paper §4–5): the law estimator (`law`) with its link functions
(`links`), optimisers (`optimisers`), equivalent-compute axis (`reference`), error metrics
(`metrics`) and bootstrap bands (`bootstrap`); train/test splits (`splits`); and the experiments
that config blocks describe: specs (`spec`), data join (`frame`), one fit (`fit`), all fits and
sweeps of a block (`experiments`), preregistration (`prereg`)."""
