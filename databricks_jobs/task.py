"""What one task of the tabtune Databricks job does: run its step as a child of the pipeline run,
and publish the run IDs the next tasks need as task values.

This recreates the hierarchy `mlflow run` builds (steps/main.py): one pipeline run tagged
`tabtune.step=main`, each step run nested under it with `mlflow.parentRunId`, the pipeline run
tagged `tabtune.run_id.<step>` per step and, after the last step, holding test_rmse,
leaderboard.csv and pipeline_summary.md. The first task creates the pipeline run; if a step
fails, the pipeline run ends FAILED naming the step and its run, and Databricks skips the tasks
downstream. The step itself is the project's own `steps.<entry point>.run()`, its options checked by
the entry point's click command exactly as on the command line."""

from __future__ import annotations

import contextlib
import importlib
import os
from collections.abc import Callable, Iterator
from typing import Any, Protocol

from databricks_jobs.job import (
    COLLECT_ROLE,
    CONTROL_KEYS,
    ENTRY_POINT_KEY,
    EXPERIMENT_KEY,
    FIRST_STEP,
    LAST_STEP,
    MODEL_NAME_KEY,
    PIPELINE_RUN_KEY,
    ROLE_KEY,
    RUN_ID_KEY,
    SECRET_KEY_KEY,
    SECRET_SCOPE_KEY,
    STORAGE_ENV,
    WORKER_KEY,
    WORKER_ROLE,
    WORKERS_KEY,
)
from steps.lib import names, tracking
from steps.lib.options import SEED_NUMBER
from steps.lib.orchestration import outcome, pipeline, step_cache

Runner = Callable[[str, dict[str, str]], str]


class TaskValues(Protocol):
    """The part of `dbutils.jobs.taskValues` a task uses."""

    def set(self, key: str, value: Any) -> None: ...


class Secrets(Protocol):
    """The part of `dbutils.secrets` a worker task uses."""

    def get(self, scope: str, key: str) -> str: ...


# On the pipeline run, worker <i> of tune_<family> is tagged tabtune.worker_run_id.tune_<family>.<i>
# (not tabtune.run_id.*, which names one run per step: the collect task sets that one).
WORKER_RUN_TAG_PREFIX = "tabtune.worker_run_id."

def run_step(entry_point: str, options: dict[str, str]) -> str:
    """Run `steps.<entry_point>.run()` with string options parsed and checked by the entry
    point's click command (as `python -m steps.<entry_point>` would); its run ID."""
    module = importlib.import_module(f"steps.{entry_point}")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    return module.run(**step_cache.interpreted_parameters(entry_point, options))


def run_task(step: str, params: dict[str, str], task_values: TaskValues, runner: Runner = run_step,
             secrets: Secrets | None = None) -> str:
    """Run one step task; returns the step's run ID after publishing it as the task value `run_id`.

    `params` are the task's notebook parameters (databricks_jobs.job.task_parameters): the
    experiment (first task) or the pipeline run ID (the others), and the step's options. A
    worker or collect task (job.worker_parameters, job.collect_parameters) goes to run_worker or
    collect_workers; `secrets` is dbutils.secrets, which only workers read."""
    role = params.get(ROLE_KEY)
    if role == WORKER_ROLE:
        if secrets is None:
            raise ValueError(f"a worker task of {step} needs dbutils.secrets for its Optuna storage")
        return run_worker(step, params, task_values, secrets, runner)
    if role == COLLECT_ROLE:
        return collect_workers(step, params, task_values)
    options = {key: value for key, value in params.items() if key not in CONTROL_KEYS}
    if step == FIRST_STEP:
        model_name = params.get(MODEL_NAME_KEY, "")
        tracking.check_model_name(model_name or names.default_model_name(options.get("data", names.DEFAULT_DATA)))
        pipeline_run_id = start_pipeline_run(params[EXPERIMENT_KEY])
        task_values.set(PIPELINE_RUN_KEY, pipeline_run_id)
    else:
        pipeline_run_id = params[PIPELINE_RUN_KEY]
    step_run_id = start_step_run(pipeline_run_id, step)
    try:
        with _resuming(step_run_id):
            returned = runner(params[ENTRY_POINT_KEY], options)
        if returned != step_run_id:
            raise RuntimeError(f"step {step} logged to run {returned}, not to its task's run {step_run_id}")
    except BaseException as error:
        tracking.end_failed(step_run_id, str(error))
        tracking.end_failed(pipeline_run_id, str(tracking.StepFailed(step, step_run_id)))
        raise
    tracking.log_results(tags={names.STEP_RUN_TAG_PREFIX + step: step_run_id}, run_id=pipeline_run_id)
    task_values.set(RUN_ID_KEY, step_run_id)
    if step == LAST_STEP:
        finish_pipeline_run(pipeline_run_id, registered_model_name=options["registered_model_name"],
                            alias=options["alias"])
    print(f"{step}: run {step_run_id} (pipeline run {pipeline_run_id})")
    return step_run_id


def run_worker(step: str, params: dict[str, str], task_values: TaskValues, secrets: Secrets,
               runner: Runner = run_step) -> str:
    """One iteration of a tuning step's for_each_task: a worker on the study all iterations share.

    The storage URL (a database URL with its password) comes from the Databricks secret named by
    the task's parameters and goes only into $TABTUNE_OPTUNA_STORAGE, which the step reads through
    its `storage=env:TABTUNE_OPTUNA_STORAGE` option; Databricks redacts secret values in the
    notebook's output, and the step masks URLs in what it logs. The worker's seed is the
    pipeline's seed plus its index, so the workers' samplers (and fits) differ and a rerun with
    the same seed repeats them. The step decides which run is the study's tuning run (the first
    worker to create the study records its own run); a worker that attached to another is then
    nested under that run, as under `mlflow run`, and not under the pipeline run."""
    index = int(params[WORKER_KEY])
    storage_url = secrets.get(params[SECRET_SCOPE_KEY], params[SECRET_KEY_KEY])
    options = {key: value for key, value in params.items() if key not in CONTROL_KEYS}
    options["seed"] = str(SEED_NUMBER.convert(options["seed"], None, None) + index)
    pipeline_run_id = params[PIPELINE_RUN_KEY]
    run_id = start_step_run(pipeline_run_id, step)
    try:
        with _resuming(run_id), _environment(STORAGE_ENV, storage_url):
            returned = runner(params[ENTRY_POINT_KEY], options)
        if returned != run_id:
            raise RuntimeError(f"worker {index} of {step} logged to run {returned}, not to its task's run {run_id}")
    except BaseException as error:
        tracking.end_failed(run_id, str(error))
        tracking.end_failed(pipeline_run_id, str(tracking.StepFailed(f"{step} (worker {index})", run_id)))
        raise
    tuning_run_id = tracking.run_tags(run_id).get(names.TUNING_RUN_TAG, run_id)
    if tuning_run_id != run_id:
        tracking.log_results(tags={names.PARENT_RUN_TAG: tuning_run_id}, run_id=run_id)
    tracking.log_results(tags={f"{WORKER_RUN_TAG_PREFIX}{step}.{index}": run_id}, run_id=pipeline_run_id)
    task_values.set(RUN_ID_KEY, run_id)  # visible in the iteration's output; not referenceable downstream
    print(f"{step} worker {index}: run {run_id} (tuning run {tuning_run_id}, pipeline run {pipeline_run_id})")
    return run_id


def collect_workers(step: str, params: dict[str, str], task_values: TaskValues) -> str:
    """After every worker of `step` finished: the one tuning run they share, checked, tagged on
    the pipeline run as `step`'s run and published as the task value `run_id` (what refit's
    `{{tasks.<step>.values.run_id}}` reads). It reads the workers' run IDs from the pipeline
    run's tags, because Databricks does not let a task reference the task values of a
    for_each_task's iterations."""
    pipeline_run_id, workers = params[PIPELINE_RUN_KEY], int(params[WORKERS_KEY])
    try:
        tuning_run_id = _shared_tuning_run(pipeline_run_id, step, workers)
    except BaseException as error:
        tracking.end_failed(pipeline_run_id, f"step {step} failed: {error}")
        raise
    tracking.log_results(tags={names.STEP_RUN_TAG_PREFIX + step: tuning_run_id}, run_id=pipeline_run_id)
    task_values.set(RUN_ID_KEY, tuning_run_id)
    print(f"{step}: tuning run {tuning_run_id} of {workers} workers (pipeline run {pipeline_run_id})")
    return tuning_run_id


def _shared_tuning_run(pipeline_run_id: str, step: str, workers: int) -> str:
    """The tuning run of `step`'s workers: every worker finished, all on one study whose tuning
    run is a `step` run holding the study's summary (the last worker to finish writes it)."""
    prefix = f"{WORKER_RUN_TAG_PREFIX}{step}."
    found = {key.removeprefix(prefix): value for key, value in tracking.run_tags(pipeline_run_id).items()
             if key.startswith(prefix)}
    expected = {str(index) for index in range(workers)}
    if set(found) != expected:
        raise RuntimeError(f"{step}: expected the runs of workers {sorted(expected, key=int)}, "
                           f"found {sorted(found, key=int)}")
    tuning = {tracking.run_tags(run_id).get(names.TUNING_RUN_TAG, run_id) for run_id in found.values()}
    if len(tuning) != 1:
        raise RuntimeError(f"{step}: the workers logged to {len(tuning)} tuning runs {sorted(tuning)}, not one "
                           "shared study")
    tuning_run_id = tuning.pop()
    tags = tracking.run_tags(tuning_run_id)
    if tags.get(names.STEP_TAG) != step or "best_trial" not in tags:
        raise RuntimeError(f"{step}: run {tuning_run_id} is not a finished {step} tuning run with a summary")
    return tuning_run_id


# ------------------------------------------------------------------------------------ MLflow runs
def start_pipeline_run(experiment: str) -> str:
    """The pipeline run, RUNNING until the last task ends it, in `experiment` (a workspace path)."""
    return tracking.create_run(names.MAIN, tags={names.STEP_TAG: names.MAIN}, experiment=experiment)


def start_step_run(pipeline_run_id: str, step: str) -> str:
    """A RUNNING run for `step`, nested under the pipeline run, that the step then resumes."""
    return tracking.create_run(step, tags={}, parent_run_id=pipeline_run_id)


def _resuming(run_id: str) -> contextlib.AbstractContextManager[None]:
    """Make the step's `mlflow.start_run()` resume `run_id`, as `mlflow run` does through MLFLOW_RUN_ID."""
    return _environment("MLFLOW_RUN_ID", run_id)


@contextlib.contextmanager
def _environment(name: str, value: str) -> Iterator[None]:
    """$`name` set to `value` while the step runs, then as it was (a secret does not outlive the step)."""
    previous = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = previous


def finish_pipeline_run(pipeline_run_id: str, *, registered_model_name: str, alias: str) -> None:
    """What `main` logs on its pipeline run once every step finished; then end it FINISHED."""
    prefix = names.STEP_RUN_TAG_PREFIX
    step_ids = {key[len(prefix):]: value for key, value in tracking.run_tags(pipeline_run_id).items()
                if key.startswith(prefix)}
    families = sorted(step.removeprefix(names.TUNE_PREFIX) for step in step_ids if names.is_tune_step(step))
    order = [step.name for step in pipeline.steps(tuple(families))]
    outcome.record_results(pipeline_run_id, {step: step_ids[step] for step in order},
                           registered_model_name=registered_model_name, alias=alias)
    tracking.end_finished(pipeline_run_id)
