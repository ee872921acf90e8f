"""Figures: each function reads the tables its rule declares and draws them; none fits anything.

Design (how to add a figure):

- `style` holds the shared look and `save_figure`, which writes every figure as PNG (and PDF when
  config `figure_formats` asks for it) beside the CSV of exactly what it plots.
- The stage that fits writes everything a figure shows (curves, bands, per-family lines, the
  PassUntil law points); a figure module imports no fitting module (tests/test_figures.py checks
  the imports of every module here).
- Paper figures of the scaling laws are config: `law_figures:` in config/figures.yaml maps a figure
  id to a builder of `laws.BUILDERS` (an `obsscale.core.registry.Registry`) and its panels
  (`experiment/target/predictors`).  `spec.resolve_law_figures` checks every panel against
  `experiments:` when the workflow is parsed (a missing name is a ConfigError with the key path).
  A new figure of an existing kind is one config entry and a caption, workflow/report/<id>.rst; a
  new kind is one builder, `@BUILDERS.register("name") def name(tables, spec) -> (fig, data)`,
  plus its name in the schema's `builder` enum (a test checks that the two agree).  The drawing
  jobs are assigned by `spec.assign_jobs` from ids and panel counts (or a figure's `job:`).
- The capability (`capability`), selection and PassUntil (`passuntil`) stages draw fixed sets of
  figures named in obsscale.stages.outputs; `spec.SECTIONS` places them in the report.
- The report groups figures by paper section (`section:` of a law figure, `spec.SECTIONS`
  otherwise) with one subcategory per paper figure (`spec.report_subcategory`).
"""
