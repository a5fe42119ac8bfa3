"""The tabtune Databricks job definition, built by a pure function (no network, no MLflow).

One notebook task per step of steps/lib/pipeline.py (the wiring `main` uses too): prepare →
one tuning task per family, in parallel → refit → package, all on one shared job cluster. Run IDs travel as
task values: every task publishes its step run's ID under `run_id` (prepare also the pipeline
run's ID), and a downstream task receives them through dynamic value references such as
`{{tasks.prepare.values.run_id}}` in its parameters, which Databricks resolves when the task
starts. The pipeline settings are job parameters (`{{job.parameters.trials}}`) whose defaults
are the MLproject's, so one run can override them and the two never drift apart."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from steps.lib import names, pipeline

PROJECT_DIR = Path(__file__).resolve().parents[1]
NOTEBOOK = "databricks_jobs/task_notebook"  # what every task runs, relative to the repository root
JOB_CLUSTER_KEY = "tabtune"

# Task values and notebook parameters the tasks share (task.py and task_notebook.py read them).
RUN_ID_KEY = "run_id"
PIPELINE_RUN_KEY = "pipeline_run_id"
STEP_KEY = "step"
EXPERIMENT_KEY = "experiment"

ENTRY_POINT_KEY = "entry_point"
CONTROL_KEYS = (STEP_KEY, ENTRY_POINT_KEY, EXPERIMENT_KEY, PIPELINE_RUN_KEY)

FIRST_STEP = names.PREPARE
LAST_STEP = names.PACKAGE


def job_parameter(name: str) -> str:
    return f"{{{{job.parameters.{name}}}}}"


def task_value(task_key: str, key: str = RUN_ID_KEY) -> str:
    return f"{{{{tasks.{task_key}.values.{key}}}}}"


def task_parameters(step: pipeline.Step) -> dict[str, str]:
    """A step task's notebook parameters: the step and its entry point, where its pipeline run
    is, and the step's options wired as steps/lib/pipeline.py says: pipeline settings from job
    parameters, upstream run IDs from upstream tasks' values.

    The first task gets the experiment and creates the pipeline run; the others get its ID."""
    if step.name == FIRST_STEP:
        control = {EXPERIMENT_KEY: job_parameter(EXPERIMENT_KEY)}
    else:
        control = {PIPELINE_RUN_KEY: task_value(FIRST_STEP, PIPELINE_RUN_KEY)}
    settings = {name: job_parameter(name) for name in step.settings}
    run_ids = {upstream: task_value(upstream) for upstream in step.depends_on}
    return {STEP_KEY: step.name, ENTRY_POINT_KEY: step.entry_point, **control,
            **step.parameters(settings, run_ids)}


def parameter_names(step_name: str) -> list[str]:
    """The notebook parameters of the task running `step_name` (which widgets it reads); the
    same whichever families the job tunes."""
    known = {step.name: step for step in pipeline.steps()}
    step = known.get(step_name) or pipeline.tuning_step(step_name.removeprefix(names.TUNE_PREFIX))
    return list(task_parameters(step))


def mlproject_defaults(families: tuple[str, ...] = pipeline.DEFAULT_FAMILIES) -> dict[str, str]:
    """Every job parameter but the experiment: the pipeline settings its steps take, each with
    its default from MLproject's `main`."""
    parameters = yaml.safe_load((PROJECT_DIR / "MLproject").read_text())["entry_points"][names.MAIN]["parameters"]
    return {name: str(parameters[name].get("default", "")) for name in pipeline.settings_used(families)}


def requirement_pins() -> list[str]:
    """The runtime pins of requirements.txt (identical to python_env.yaml's)."""
    lines = (PROJECT_DIR / "requirements.txt").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def load_cluster(path: str | Path) -> dict[str, Any]:
    """A cluster spec from a JSON file, without its `_comment`."""
    spec = json.loads(Path(path).read_text())
    return {key: value for key, value in spec.items() if not key.startswith("_")}


def build_job(*, experiment: str, cluster: dict[str, Any], git_url: str | None = None,
              git_branch: str = "main", git_provider: str = "gitHub", workspace_dir: str | None = None,
              name: str = "tabtune", families: tuple[str, ...] = pipeline.DEFAULT_FAMILIES) -> dict[str, Any]:
    """The Jobs API settings of the tabtune job (what jobs/create takes): one task per step of
    the pipeline that tunes `families`.

    The code comes from a Git repository (`git_url`, checked out per run) or from a workspace
    folder (`workspace_dir`, e.g. a Git folder); `experiment` is the MLflow experiment path."""
    if (git_url is None) == (workspace_dir is None):
        raise ValueError("give exactly one of git_url and workspace_dir")
    if git_url is not None:
        source = "GIT"
        notebook_path = NOTEBOOK
    else:
        source = "WORKSPACE"
        notebook_path = f"{workspace_dir.rstrip('/')}/{NOTEBOOK}"
    libraries = [{"pypi": {"package": pin}} for pin in requirement_pins()]
    tasks = []
    for step in pipeline.steps(families):
        task: dict[str, Any] = {"task_key": step.name}
        if step.depends_on:
            task["depends_on"] = [{"task_key": key} for key in step.depends_on]
        task.update(
            job_cluster_key=JOB_CLUSTER_KEY,
            libraries=libraries,
            notebook_task={"notebook_path": notebook_path, "source": source,
                           "base_parameters": task_parameters(step)},
        )
        tasks.append(task)
    parameters = [{"name": EXPERIMENT_KEY, "default": experiment}]
    parameters += [{"name": key, "default": value} for key, value in mlproject_defaults(families).items()]
    settings: dict[str, Any] = {
        "name": name,
        "job_clusters": [{"job_cluster_key": JOB_CLUSTER_KEY, "new_cluster": cluster}],
        "parameters": parameters,
        "tasks": tasks,
    }
    if git_url is not None:
        settings["git_source"] = {"git_url": git_url, "git_provider": git_provider, "git_branch": git_branch}
    return settings
