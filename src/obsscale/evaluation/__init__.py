"""The evaluation stage: lm-evaluation-harness over a model sheet and benchmark suites, aggregated
into tidy and wide score tables (`harness`)."""
