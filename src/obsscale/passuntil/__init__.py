"""PassUntil (Hu et al. 2023): sample until r passes, unbiased tiny pass rates, task scaling laws.

Modules, in the order of the data flow:

- `tasks`: a task as config (data, prompt, checker, r, K_max, sampling settings); `sources`: where
  its instances come from (JSONL, a package's data file, an lm-eval task).
- `backends`: one generation interface over HF transformers `generate` and vLLM.
- `checkers` / `sandbox` (+ `sandbox_runner`): whether a sample passes (exact match, regex, code
  execution in a bubblewrap sandbox that fails closed).
- `identity`: the model identity a sample log belongs to.
- `sampling`: the resumable sample-until-r-passes engine writing a JSONL log per (model, task).
- `estimators`: per-instance and task-level pass-rate estimates from the logs.
- `laws`: task- and instance-level scaling-law fits, the curvature test and the mixture test.
"""

from obsscale.passuntil.estimators import (  # noqa: F401
    clopper_pearson,
    instance_estimates,
    pass_at_k,
    task_pass_until,
    unbiased_pass_rate,
)
from obsscale.passuntil.laws import (  # noqa: F401
    InstanceScalingLaw,
    TaskScalingLaw,
    compare_mixture,
    curvature_test,
)
