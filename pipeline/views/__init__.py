"""HTTP entry points of the pipeline, one module per area."""
