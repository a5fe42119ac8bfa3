"""The pipeline: which steps run in which order, when one is reused, what its runs read, and
what the pipeline run shows; how a step's command line runs, and MLproject written from the steps' options."""
