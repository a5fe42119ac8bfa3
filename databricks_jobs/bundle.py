"""The tabtune job as a Databricks Asset Bundle resource (databricks.yml, `python: resources:`).

`databricks bundle deploy` runs `load_resources` through the databricks-bundles package, which
turns the job built by databricks_jobs.job.build_job (the same pipeline wiring as `main` and the
SDK script) into the bundle's job `tabtune`; `Job.from_dict` checks the dict against the Jobs
types of the bundle schema, so a misspelt field fails the deploy, not a run. The bundle syncs the
repository to the workspace, so the tasks run the notebook from `${workspace.file_path}`; the
experiment, node type and secret names are bundle variables (interpolated by the CLI after this
runs), the families and the number of tuning workers too, but read here because they shape the
task graph.
databricks-bundles is a deploy-time dependency (requirements-dev.txt), never a runtime one."""

from __future__ import annotations

from typing import Any

from databricks_jobs import job
from steps.lib.orchestration import pipeline

RESOURCE_KEY = "tabtune"  # `databricks bundle run tabtune`
BUNDLE_ROOT = "${workspace.file_path}"  # where `bundle deploy` syncs the repository
NODE_TYPE = "${var.node_type_id}"


def job_settings(variables: dict[str, Any]) -> dict[str, Any]:
    """The bundle's job as Jobs API settings: build_job over the synced files, with the cluster of
    databricks/job-cluster.json on the node type of the variable `node_type_id`, tuning the
    bundle variable `families` (default lasso,catboost) with `workers` (default 1) tuning workers
    per Optuna step."""
    cluster = job.load_cluster(job.PROJECT_DIR / "databricks" / "job-cluster.json")
    cluster["node_type_id"] = NODE_TYPE
    families = pipeline.parse_families(str(variables.get("families") or ",".join(pipeline.DEFAULT_FAMILIES)))
    return job.build_job(experiment="${var.experiment}", cluster=cluster, workspace_dir=BUNDLE_ROOT,
                         families=families, workers=int(variables.get("workers") or 1),
                         secret_scope="${var.secret_scope}", secret_key="${var.secret_key}")


def load_resources(bundle):
    """The bundle's resources: the one job, typed by databricks-bundles (named in databricks.yml)."""
    from databricks.bundles.core import Resources
    from databricks.bundles.jobs import Job

    resources = Resources()
    resources.add_job(RESOURCE_KEY, Job.from_dict(job_settings(bundle.variables)))
    return resources
