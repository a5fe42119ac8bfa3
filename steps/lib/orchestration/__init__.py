"""The pipeline: which steps run in which order, when one is reused, what its runs read, and
what the pipeline run shows."""
