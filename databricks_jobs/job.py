"""The tabtune Databricks job definition, built by a pure function (no network, no MLflow).

One notebook task per step of steps/lib/orchestration/pipeline.py (the wiring `main` uses too): prepare →
one tuning task per family, in parallel → refit → package, all on one shared job cluster (with
workers > 1, each tuning worker on a cluster of its own: `build_job`). Run IDs travel as
task values: every task publishes its step run's ID under `run_id` (prepare also the pipeline
run's ID), and a downstream task receives them through dynamic value references such as
`{{tasks.prepare.values.run_id}}` in its parameters, which Databricks resolves when the task
starts. The pipeline settings are job parameters (`{{job.parameters.trials}}`) whose defaults
are the MLproject's, so one run can override them and the two never drift apart."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from steps.lib import names
from steps.lib.names import PROJECT_DIR
from steps.lib.orchestration import pipeline

NOTEBOOK = "databricks_jobs/task_notebook"  # what every task runs, relative to the repository root
JOB_CLUSTER_KEY = "tabtune"

# Task values and notebook parameters the tasks share (task.py and task_notebook.py read them).
RUN_ID_KEY = "run_id"
PIPELINE_RUN_KEY = "pipeline_run_id"
STEP_KEY = "step"
EXPERIMENT_KEY = "experiment"
# The first task also gets the registered model name, to refuse one the registry would refuse
# (Unity Catalog: catalog.schema.name) before any step runs, not in package after the budget.
MODEL_NAME_KEY = "check_registered_model_name"

ENTRY_POINT_KEY = "entry_point"
# What a task does with its step: run it (`step`), run one of several tuning workers on one shared
# Optuna study (`worker`, inside a for_each_task), or find the study's tuning run once every
# worker ended (`collect`), for refit to read.
ROLE_KEY = "role"
STEP_ROLE, WORKER_ROLE, COLLECT_ROLE = "step", "worker", "collect"
WORKER_KEY = "worker"  # a worker's index, from the for_each_task's `{{input}}`
WORKERS_KEY = "workers"  # how many workers the collect task expects
SECRET_SCOPE_KEY = "storage_secret_scope"  # where the workers' Optuna storage URL is kept: the
SECRET_KEY_KEY = "storage_secret_key"  # names of a Databricks secret, never its value
CONTROL_KEYS = (STEP_KEY, ENTRY_POINT_KEY, EXPERIMENT_KEY, PIPELINE_RUN_KEY, ROLE_KEY, WORKER_KEY, WORKERS_KEY,
                SECRET_SCOPE_KEY, SECRET_KEY_KEY, MODEL_NAME_KEY)
# The environment variable a worker task puts the secret in; the step reads it through `env:`.
STORAGE_ENV = "TABTUNE_OPTUNA_STORAGE"
DEFAULT_SECRET_SCOPE = "tabtune"
DEFAULT_SECRET_KEY = "optuna-storage"
WORKERS_SUFFIX = "_workers"  # the for_each task of tune_<family> is tune_<family>_workers
ITERATION_SUFFIX = "_worker"  # and its nested task tune_<family>_worker

FIRST_STEP = names.PREPARE
LAST_STEP = names.PACKAGE


def job_parameter(name: str) -> str:
    return f"{{{{job.parameters.{name}}}}}"


def task_value(task_key: str, key: str = RUN_ID_KEY) -> str:
    return f"{{{{tasks.{task_key}.values.{key}}}}}"


def task_parameters(step: pipeline.Step) -> dict[str, str]:
    """A step task's notebook parameters: the step and its entry point, where its pipeline run
    is, and the step's options wired as steps/lib/orchestration/pipeline.py says: pipeline settings from job
    parameters, upstream run IDs from upstream tasks' values.

    The first task gets the experiment and creates the pipeline run; the others get its ID."""
    if step.name == FIRST_STEP:
        control = {EXPERIMENT_KEY: job_parameter(EXPERIMENT_KEY),
                   MODEL_NAME_KEY: job_parameter("registered_model_name")}
    else:
        control = {PIPELINE_RUN_KEY: task_value(FIRST_STEP, PIPELINE_RUN_KEY)}
    settings = {name: job_parameter(name) for name in step.settings}
    run_ids = {upstream: task_value(upstream) for upstream in step.depends_on}
    return {STEP_KEY: step.name, ROLE_KEY: STEP_ROLE, ENTRY_POINT_KEY: step.entry_point, **control,
            **step.parameters(settings, run_ids)}


def worker_parameters(step: pipeline.Step, secret_scope: str = DEFAULT_SECRET_SCOPE,
                      secret_key: str = DEFAULT_SECRET_KEY) -> dict[str, str]:
    """The notebook parameters of one iteration of a tuning step's for_each_task: the step's own
    parameters, but the Optuna storage read from the Databricks secret `secret_scope`/`secret_key`
    into $TABTUNE_OPTUNA_STORAGE by the task (so the URL, which holds the database password, is
    in no job or task parameter, and MLflow records only `env:TABTUNE_OPTUNA_STORAGE`), and the
    worker's index from the iteration's input (task.py derives its seed from it). The study name
    stays the pipeline's: empty by default, which the step derives from the data run,
    `iterations` and the study's settings, all the same for every worker, so all of them join
    one study."""
    parameters = task_parameters(step)
    parameters.update({ROLE_KEY: WORKER_ROLE, WORKER_KEY: "{{input}}", SECRET_SCOPE_KEY: secret_scope,
                       SECRET_KEY_KEY: secret_key, "storage": f"env:{STORAGE_ENV}"})
    return parameters


def collect_parameters(step: pipeline.Step, workers: int) -> dict[str, str]:
    """The notebook parameters of the task after a tuning step's workers: it finds the one tuning
    run they share and publishes it as `run_id` under the step's own task key, so refit's
    `{{tasks.tune_<family>.values.run_id}}` is the same whether the step ran once or N times."""
    return {STEP_KEY: step.name, ROLE_KEY: COLLECT_ROLE, PIPELINE_RUN_KEY: task_value(FIRST_STEP, PIPELINE_RUN_KEY),
            WORKERS_KEY: str(workers)}


def is_sharded(step: pipeline.Step, workers: int) -> bool:
    """Whether the job runs `step` as `workers` Optuna workers: an Optuna tuning step (not a
    grid one, which has no study to share) when more than one worker is asked for."""
    return workers > 1 and step.entry_point == names.TUNE


def parameter_names(step_name: str, role: str = STEP_ROLE) -> list[str]:
    """The notebook parameters of the task running `step_name` in `role` (which widgets it
    reads); the same whichever families the job tunes and however many workers it runs."""
    known = {step.name: step for step in pipeline.steps()}
    step = known.get(step_name) or pipeline.tuning_step(step_name.removeprefix(names.TUNE_PREFIX))
    if role == WORKER_ROLE:
        return list(worker_parameters(step))
    if role == COLLECT_ROLE:
        return list(collect_parameters(step, 2))
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
              name: str = "tabtune", families: tuple[str, ...] = pipeline.DEFAULT_FAMILIES, workers: int = 1,
              secret_scope: str = DEFAULT_SECRET_SCOPE, secret_key: str = DEFAULT_SECRET_KEY) -> dict[str, Any]:
    """The Jobs API settings of the tabtune job (what jobs/create takes): one task per step of
    the pipeline that tunes `families`.

    The code comes from a Git repository (`git_url`, checked out per run) or from a workspace
    folder (`workspace_dir`, e.g. a Git folder); `experiment` is the MLflow experiment path.

    With `workers` > 1, each Optuna tuning step tune_<family> becomes a `for_each_task`
    tune_<family>_workers over the inputs [0, …, workers-1] with concurrency `workers`, every
    iteration on a cluster of its own (a task-level `new_cluster`), all on one Optuna study kept
    in the database whose URL is the secret `secret_scope`/`secret_key`; then a small task under
    the step's own name publishes the study's tuning run for refit (task values of iterations
    cannot be referenced from outside the loop)."""
    if (git_url is None) == (workspace_dir is None):
        raise ValueError("give exactly one of git_url and workspace_dir")
    if workers < 1:
        raise ValueError(f"workers must be at least 1, not {workers}")
    source = "GIT" if git_url is not None else "WORKSPACE"
    notebook_path = NOTEBOOK if git_url is not None else f"{workspace_dir.rstrip('/')}/{NOTEBOOK}"
    libraries = [{"pypi": {"package": pin}} for pin in requirement_pins()]

    def notebook(base_parameters: dict[str, str]) -> dict[str, Any]:
        return {"notebook_path": notebook_path, "source": source, "base_parameters": base_parameters}

    tasks = [task for step in pipeline.steps(families)
             for task in step_tasks(step, workers, cluster, libraries, notebook, secret_scope, secret_key)]
    # Only the settings some task reads (the sharded steps take no `storage`: theirs is the secret).
    used = set(re.findall(r"\{\{job\.parameters\.(\w+)\}\}", json.dumps(tasks)))
    parameters = [{"name": EXPERIMENT_KEY, "default": experiment}]
    parameters += [{"name": key, "default": value} for key, value in mlproject_defaults(families).items()
                   if key in used]
    settings: dict[str, Any] = {
        "name": name,
        "job_clusters": [{"job_cluster_key": JOB_CLUSTER_KEY, "new_cluster": cluster}],
        "parameters": parameters,
        "tasks": tasks,
    }
    if git_url is not None:
        settings["git_source"] = {"git_url": git_url, "git_provider": git_provider, "git_branch": git_branch}
    return settings


def step_tasks(step: pipeline.Step, workers: int, cluster: dict[str, Any], libraries: list, notebook,
               secret_scope: str, secret_key: str) -> list[dict[str, Any]]:
    """The tasks that run one step: one notebook task on the job cluster, or, for a sharded
    tuning step, its workers' for_each_task and the task that collects their tuning run."""
    depends_on = [{"task_key": key} for key in step.depends_on]
    if not is_sharded(step, workers):
        task: dict[str, Any] = {"task_key": step.name, **({"depends_on": depends_on} if depends_on else {})}
        return [{**task, "job_cluster_key": JOB_CLUSTER_KEY, "libraries": libraries,
                 "notebook_task": notebook(task_parameters(step))}]
    loop_key = step.name + WORKERS_SUFFIX
    return [
        {"task_key": loop_key, "depends_on": depends_on, "for_each_task": {
            "inputs": json.dumps(list(range(workers))),
            "concurrency": workers,
            "task": {"task_key": step.name + ITERATION_SUFFIX, "new_cluster": cluster, "libraries": libraries,
                     "notebook_task": notebook(worker_parameters(step, secret_scope, secret_key))},
        }},
        {"task_key": step.name, "depends_on": [{"task_key": loop_key}], "job_cluster_key": JOB_CLUSTER_KEY,
         "libraries": libraries, "notebook_task": notebook(collect_parameters(step, workers))},
    ]
