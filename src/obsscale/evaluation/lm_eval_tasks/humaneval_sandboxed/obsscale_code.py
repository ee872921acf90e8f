"""lm-eval's `!function` entry points of this folder's tasks (the code is in obsscale.evaluation)."""

from obsscale.evaluation.code_tasks import humaneval_dataset, process_results  # noqa: F401
