"""What one task of the tabtune Databricks job does: run its step as a child of the pipeline run,
and publish the run IDs the next tasks need as task values.

This recreates the hierarchy `mlflow run` builds (steps/main.py): one pipeline run tagged
`tabtune.step=main`, each step run nested under it with `mlflow.parentRunId`, the pipeline run
tagged `tabtune.run_id.<step>` per step and, after the last step, holding test_rmse,
leaderboard.csv and pipeline_summary.md. The first task creates the pipeline run; if a step
fails, the pipeline run ends FAILED naming the step and its run, and Databricks skips the tasks
downstream. The step itself is the project's own `steps.<step>.run()`, its options checked by the
step's click command exactly as on the command line."""

from __future__ import annotations

import contextlib
import importlib
import os
from collections.abc import Callable, Iterator
from typing import Any, Protocol

from databricks_jobs.job import (
    CONTROL_KEYS,
    ENTRY_POINT_KEY,
    EXPERIMENT_KEY,
    FIRST_STEP,
    LAST_STEP,
    PIPELINE_RUN_KEY,
    RUN_ID_KEY,
)
from steps.lib import names, pipeline, tracking

Runner = Callable[[str, dict[str, str]], str]


class TaskValues(Protocol):
    """The part of `dbutils.jobs.taskValues` a task uses."""

    def set(self, key: str, value: Any) -> None: ...


def run_step(entry_point: str, options: dict[str, str]) -> str:
    """Run `steps.<entry_point>.run()` with string options parsed and checked by the entry
    point's click command (as `python -m steps.<entry_point>` would); its run ID."""
    module = importlib.import_module(f"steps.{entry_point}")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    return module.run(**step_kwargs(entry_point, options))


def step_kwargs(entry_point: str, options: dict[str, str]) -> dict[str, Any]:
    """`options` as the typed keyword arguments of `steps.<entry_point>.run()`; click errors on
    bad input."""
    command = importlib.import_module(f"steps.{entry_point}").command
    args = [part for name, value in options.items() for part in (f"--{name.replace('_', '-')}", value)]
    return command.make_context(f"steps.{entry_point}", args).params


def run_task(step: str, params: dict[str, str], task_values: TaskValues, runner: Runner = run_step) -> str:
    """Run one step task; returns the step's run ID after publishing it as the task value `run_id`.

    `params` are the task's notebook parameters (databricks_jobs.job.task_parameters): the
    experiment (first task) or the pipeline run ID (the others), and the step's options."""
    options = {key: value for key, value in params.items() if key not in CONTROL_KEYS}
    if step == FIRST_STEP:
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


# ------------------------------------------------------------------------------------ MLflow runs
def start_pipeline_run(experiment: str) -> str:
    """The pipeline run, RUNNING until the last task ends it, in `experiment` (a workspace path)."""
    return tracking.create_run(names.MAIN, tags={names.STEP_TAG: names.MAIN}, experiment=experiment)


def start_step_run(pipeline_run_id: str, step: str) -> str:
    """A RUNNING run for `step`, nested under the pipeline run, that the step then resumes."""
    return tracking.create_run(step, tags={}, parent_run_id=pipeline_run_id)


@contextlib.contextmanager
def _resuming(run_id: str) -> Iterator[None]:
    """Make the step's `mlflow.start_run()` resume `run_id`, as `mlflow run` does through MLFLOW_RUN_ID."""
    previous = os.environ.get("MLFLOW_RUN_ID")
    os.environ["MLFLOW_RUN_ID"] = run_id
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("MLFLOW_RUN_ID", None)
        else:
            os.environ["MLFLOW_RUN_ID"] = previous


def finish_pipeline_run(pipeline_run_id: str, *, registered_model_name: str, alias: str) -> None:
    """What `main` logs on its pipeline run once every step finished; then end it FINISHED."""
    prefix = names.STEP_RUN_TAG_PREFIX
    step_ids = {key[len(prefix):]: value for key, value in tracking.run_tags(pipeline_run_id).items()
                if key.startswith(prefix)}
    tuning = sorted(step for step in step_ids if names.is_tune_step(step))
    order = (names.PREPARE, *tuning, names.REFIT, names.PACKAGE)
    pipeline.record_results(pipeline_run_id, {step: step_ids[step] for step in order},
                            registered_model_name=registered_model_name, alias=alias)
    tracking.end_finished(pipeline_run_id)
