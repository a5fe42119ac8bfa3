"""python -m databricks_jobs.submit: create (or update) the tabtune job in a Databricks workspace
and start a run of it.

The job is built by databricks_jobs.job.build_job and sent with databricks-sdk: jobs/create, or
jobs/reset when a job of that name exists (so rerunning this script updates the job instead of
piling up copies), then jobs/run-now with any `-P name=value` overrides of the job parameters.
Credentials come from databricks-sdk's own configuration (DATABRICKS_HOST and DATABRICKS_TOKEN,
or `--profile` from ~/.databrickscfg), never from the command line, and never enter the job."""

from __future__ import annotations

import argparse
import json
import sys

from databricks_jobs import job
from steps.lib.orchestration import pipeline

PLACEHOLDER = "REPLACE-ME"
FAMILIES = "families"  # -P families=…: which families the job tunes (it is built for them)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m databricks_jobs.submit",
                                     description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--git-url", help="repository the tasks check the code out from")
    source.add_argument("--workspace-dir", help="or a workspace folder holding this repository")
    parser.add_argument("--git-branch", default="main")
    parser.add_argument("--git-provider", default="gitHub", help="as the Jobs API spells it")
    parser.add_argument("--experiment", required=True,
                        help="MLflow experiment path, e.g. /Users/you@example.com/tabtune")
    parser.add_argument("--cluster", default=str(job.PROJECT_DIR / "databricks" / "job-cluster.json"),
                        help="JSON file with the job cluster spec (default: databricks/job-cluster.json)")
    parser.add_argument("--name", default="tabtune", help="job name (default: tabtune)")
    parser.add_argument("--workers", type=int, default=1,
                        help="Optuna workers per tuning step, each on its own cluster (default: 1)")
    parser.add_argument("--secret-scope", default=job.DEFAULT_SECRET_SCOPE,
                        help="with --workers > 1: secret scope holding the Optuna storage URL")
    parser.add_argument("--secret-key", default=job.DEFAULT_SECRET_KEY,
                        help="with --workers > 1: key of the Optuna storage URL in that scope")
    parser.add_argument("-P", "--param", action="append", default=[], metavar="NAME=VALUE",
                        help="a job parameter for this run, e.g. -P trials=10 (repeatable); -P families=… builds the "
                             "job for those families")
    parser.add_argument("--no-run", action="store_true", help="create or update the job, do not start it")
    parser.add_argument("--profile", help="~/.databrickscfg profile (default: DATABRICKS_HOST and _TOKEN)")
    return parser.parse_args(argv)


def deploy(client, settings: dict) -> int:
    """Create the job, or reset the one job with the same name; its job ID."""
    from databricks.sdk.service.jobs import JobSettings

    existing = [found.job_id for found in client.jobs.list(name=settings["name"])]
    if len(existing) > 1:
        raise SystemExit(f"several jobs are named {settings['name']!r} ({existing}); pass a unique --name")
    typed = JobSettings.from_dict(settings)
    if existing:
        client.jobs.reset(existing[0], new_settings=typed)
        return existing[0]
    return client.jobs.create(**{name: getattr(typed, name) for name in settings}).job_id


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    cluster = job.load_cluster(args.cluster)
    if PLACEHOLDER in json.dumps(cluster):
        raise SystemExit(f"{args.cluster}: replace the {PLACEHOLDER} values first (see docs/databricks.md)")
    overrides = dict(item.split("=", 1) for item in args.param if "=" in item)
    malformed = len(overrides) != len(args.param)  # a NAME without =VALUE, or a NAME twice
    # The families shape the task graph (a task per tuning step): they are chosen when the job is built.
    families = pipeline.parse_families(overrides.pop(FAMILIES, ",".join(pipeline.DEFAULT_FAMILIES)))
    settings = job.build_job(experiment=args.experiment, cluster=cluster, git_url=args.git_url,
                             git_branch=args.git_branch, git_provider=args.git_provider,
                             workspace_dir=args.workspace_dir, name=args.name, families=families,
                             workers=args.workers, secret_scope=args.secret_scope, secret_key=args.secret_key)
    known = {parameter["name"] for parameter in settings["parameters"]} | {FAMILIES}
    if malformed or not set(overrides) <= known:
        raise SystemExit(f"-P takes NAME=VALUE with NAME one of {sorted(known)}; got {args.param}")

    from databricks.sdk import WorkspaceClient

    client = WorkspaceClient(profile=args.profile)
    job_id = deploy(client, settings)
    host = client.config.host.rstrip("/")
    print(f"job {job_id}: {host}/jobs/{job_id}")
    if not args.no_run:
        run = client.jobs.run_now(job_id, job_parameters=overrides or None)
        print(f"run {run.run_id}: {host}/jobs/{job_id}/runs/{run.run_id}")


if __name__ == "__main__":
    main(sys.argv[1:])
