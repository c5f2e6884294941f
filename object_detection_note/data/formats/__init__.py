"""One module per source dataset, converted to splits by pipelines/."""
