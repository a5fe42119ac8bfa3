"""The tabtune Databricks job definition, built by a pure function (no network, no MLflow).

One notebook task per step, in the order `mlflow run` uses: prepare → tune_lasso and
tune_catboost in parallel → refit → package, all on one shared job cluster. Run IDs travel as
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

from steps.lib import names

PROJECT_DIR = Path(__file__).resolve().parents[1]
NOTEBOOK = "databricks_jobs/task_notebook"  # what every task runs, relative to the repository root
JOB_CLUSTER_KEY = "tabtune"

# Task values and notebook parameters the tasks share (task.py and task_notebook.py read them).
RUN_ID_KEY = "run_id"
PIPELINE_RUN_KEY = "pipeline_run_id"
STEP_KEY = "step"
EXPERIMENT_KEY = "experiment"

FIRST_STEP = names.PREPARE
LAST_STEP = names.PACKAGE
UPSTREAM: dict[str, tuple[str, ...]] = {
    names.PREPARE: (),
    names.TUNE_LASSO: (names.PREPARE,),
    names.TUNE_CATBOOST: (names.PREPARE,),
    names.REFIT: (names.TUNE_LASSO, names.TUNE_CATBOOST),
    names.PACKAGE: (names.REFIT,),
}


def job_parameter(name: str) -> str:
    return "{{job.parameters.%s}}" % name


def task_value(task_key: str, key: str = RUN_ID_KEY) -> str:
    return "{{tasks.%s.values.%s}}" % (task_key, key)


# The options each step's `run()` gets: the same wiring as steps/main.py, plus package's registry
# settings (on Unity Catalog the model name must be catalog.schema.model).
STEP_INPUTS: dict[str, dict[str, str]] = {
    names.PREPARE: {"data": job_parameter("data"), "target": job_parameter("target"),
                    "seed": job_parameter("seed")},
    names.TUNE_LASSO: {"data_run_id": task_value(names.PREPARE), "alphas": job_parameter("alphas"),
                       "seed": job_parameter("seed")},
    names.TUNE_CATBOOST: {"data_run_id": task_value(names.PREPARE), "trials": job_parameter("trials"),
                          "iterations": job_parameter("iterations"), "seed": job_parameter("seed")},
    names.REFIT: {"data_run_id": task_value(names.PREPARE),
                  "tune_run_ids": f"{task_value(names.TUNE_LASSO)},{task_value(names.TUNE_CATBOOST)}"},
    names.PACKAGE: {"model_run_id": task_value(names.REFIT),
                    "registered_model_name": job_parameter("registered_model_name"),
                    "alias": job_parameter("alias")},
}


PIPELINE_PARAMETERS = ("data", "target", "trials", "alphas", "iterations", "seed", "registered_model_name",
                       "alias")


def task_parameters(step: str) -> dict[str, str]:
    """A step task's notebook parameters: the step, where its pipeline run is, the step's options.

    The first task gets the experiment and creates the pipeline run; the others get its ID."""
    if step == FIRST_STEP:
        control = {EXPERIMENT_KEY: job_parameter(EXPERIMENT_KEY)}
    else:
        control = {PIPELINE_RUN_KEY: task_value(FIRST_STEP, PIPELINE_RUN_KEY)}
    return {STEP_KEY: step, **control, **STEP_INPUTS[step]}


def mlproject_defaults() -> dict[str, str]:
    """Every job parameter but the experiment, with its default from MLproject (main's settings,
    package's registry names)."""
    entry_points = yaml.safe_load((PROJECT_DIR / "MLproject").read_text())["entry_points"]
    defaults = {}
    for entry_point in (names.PACKAGE, names.MAIN):
        defaults.update({name: str(spec.get("default", ""))
                         for name, spec in entry_points[entry_point]["parameters"].items()})
    return {name: defaults[name] for name in PIPELINE_PARAMETERS}


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
              name: str = "tabtune") -> dict[str, Any]:
    """The Jobs API settings of the tabtune job (what jobs/create takes).

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
    for step, upstream in UPSTREAM.items():
        task: dict[str, Any] = {"task_key": step}
        if upstream:
            task["depends_on"] = [{"task_key": key} for key in upstream]
        task.update(
            job_cluster_key=JOB_CLUSTER_KEY,
            libraries=libraries,
            notebook_task={"notebook_path": notebook_path, "source": source,
                           "base_parameters": task_parameters(step)},
        )
        tasks.append(task)
    parameters = [{"name": EXPERIMENT_KEY, "default": experiment}]
    parameters += [{"name": key, "default": value} for key, value in mlproject_defaults().items()]
    settings: dict[str, Any] = {
        "name": name,
        "job_clusters": [{"job_cluster_key": JOB_CLUSTER_KEY, "new_cluster": cluster}],
        "parameters": parameters,
        "tasks": tasks,
    }
    if git_url is not None:
        settings["git_source"] = {"git_url": git_url, "git_provider": git_provider, "git_branch": git_branch}
    return settings
