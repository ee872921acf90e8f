"""The workflow's side of the library: the final output files of a config (`outputs`) and the
resource checks of the rules (`cluster`).  Imported when Snakemake parses the workflow, so it imports
nothing heavy."""
