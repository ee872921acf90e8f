"""A CPU ladder: a series of small decoder-only transformers trained on a synthetic corpus by the
workflow itself, with held-out tasks on which the evaluation and PassUntil stages measure them.

- `corpus`: the synthetic tasks (arithmetic, string tasks) and the held-out split,
- `tasks`: held-out lm-eval and PassUntil task files,
- `train`: the character tokenizer, the model and its resumable, deterministic training,
- `sheet`: the evaluation stage's model sheet with N, D and C = 6ND of each trained model,
- `pipeline`: the functions the rules call.
"""
