from pathlib import Path

from obsscale.core.io import finish_job, setup_logging

setup_logging(snakemake.log[0])

from obsscale.figures.laws import render_law_figures  # noqa: E402
from obsscale.figures.spec import resolve_law_figures  # noqa: E402
from obsscale.figures.style import group_figure_outputs  # noqa: E402

outputs = group_figure_outputs(dict(snakemake.output.items()))
experiments = list(snakemake.params.experiments)
render_law_figures(
    fits_dir=Path(snakemake.input.fits[0]).parent,
    experiments=experiments,
    figures={k: v for k, v in outputs.items() if not k.startswith("fits_")},
    overviews={exp: outputs[f"fits_{exp}"] for exp in experiments if f"fits_{exp}" in outputs},
    specs=resolve_law_figures(snakemake.params.figures),
)
finish_job()
