"""Step runs and run lookups: start, resume, end and find the runs that steps hand each other,
and log params, metrics and tags on them in batched calls."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from typing import Any

import mlflow
from mlflow.entities import Metric, Param, RunStatus, RunTag
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID, MLFLOW_RUN_NAME

from steps.lib import names
from steps.lib.errors import InputError
from steps.lib.interrupts import signal_name
from steps.lib.names import PROJECT_DIR
from steps.lib.secrets import mask_url


class StepFailed(Exception):
    """A step started through `mlflow.run` ended FAILED."""

    def __init__(self, step: str, run_id: str):
        super().__init__(f"step {step} failed (run {run_id})")
        self.step = step
        self.run_id = run_id


class UploadFailed(StepFailed):
    """Writing an artifact (a file, a model) to the artifact store failed after MLflow's retries.
    A subclass of StepFailed so that every step's command line reports it the same way: one line
    naming what was being uploaded and why, exit code 1, the run FAILED with the message."""

    def __init__(self, what: str, reason: str):
        Exception.__init__(self, f"uploading {what} to the artifact store failed: {reason}")
        self.step = ""
        self.run_id = ""
        self.what = what


# How long a step keeps retrying a tracking server that does not answer, unless the user set
# MLflow's own variables: 8 attempts, waiting 0, 2, 4, … 64 s between them (urllib3's backoff,
# factor 1, plus up to 1 s jitter each), i.e. ~2 minutes of outage; each attempt times out after 30 s.
OUTAGE_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "7", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
                   "MLFLOW_HTTP_REQUEST_TIMEOUT": "30"}


def tolerate_outages() -> None:
    """MLflow's HTTP retry settings for this process: the user's if set, else OUTAGE_DEFAULTS."""
    for key, value in OUTAGE_DEFAULTS.items():
        os.environ.setdefault(key, value)


def _client() -> MlflowClient:
    return MlflowClient()


@contextlib.contextmanager
def step_run(step: str, tags: dict[str, str] | None = None) -> Iterator[str]:
    """The run `mlflow run` made for this step (or a new one), tagged with the step name.

    Any error inside marks it FAILED with the message as a tag, so the UI says why; SIGINT or
    SIGTERM (a KeyboardInterrupt, steps/lib/interrupts.py) ends it KILLED, tagged with the signal."""
    with mlflow.start_run(tags={names.STEP_TAG: step, **(tags or {})}) as run:
        mask_source_tags(run)
        try:
            yield run.info.run_id
            log_results(metrics={names.PEAK_RSS_METRIC: peak_rss_mb()}, run_id=run.info.run_id)
        except KeyboardInterrupt as interrupt:
            end_killed([run.info.run_id], signal_name(interrupt))
            with contextlib.suppress(Exception):
                mlflow.end_run(RunStatus.to_string(RunStatus.KILLED))  # off the run stack; no FAILED
            raise
        except BaseException as error:
            with contextlib.suppress(Exception):
                mlflow.set_tag(names.ERROR_TAG, mask_url(str(error))[:names.MAX_ERROR_LENGTH])
            raise


def peak_rss_mb() -> float:
    """The most memory this process, or a child it forked for one fit (steps/lib/isolation.py),
    has held so far (resident high-water mark), in MB: each step run records it, so a step that
    outgrows its machine shows which one and by how much."""
    import resource
    import sys

    from steps.lib.isolation import largest_child_maxrss

    # KiB on Linux, bytes on macOS
    peak = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, largest_child_maxrss())
    return round(peak / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)


def mask_source_tags(run) -> None:
    """MLflow records the project's git URL verbatim; a token in it must not stay in the store."""
    leaked = {key: mask_url(value) for key, value in run.data.tags.items()
              if key in names.SOURCE_TAGS and mask_url(value) != value}
    if leaked:
        log_results(tags=leaked, run_id=run.info.run_id)


def unreachable_tracking_server(timeout_s: float = 5.0) -> str | None:
    """Why the tracking server cannot be reached, or None (also for stores that are not a server).

    One TCP connect with a short timeout, before anything else: MLflow's own client retries a
    refused connection for minutes (MLFLOW_HTTP_REQUEST_MAX_RETRIES and friends) and then prints
    a traceback; this names the (masked) URI in one line within seconds."""
    import socket
    from urllib.parse import urlsplit

    uri = mlflow.get_tracking_uri()
    parts = urlsplit(uri)
    if parts.scheme not in ("http", "https"):
        return None
    try:
        address = (parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80))
        with socket.create_connection(address, timeout=timeout_s):
            return None
    except (OSError, ValueError) as error:  # ValueError: a port that is not a number
        reason = getattr(error, "strerror", None) or str(error) or type(error).__name__
        return f"tracking server {mask_url(uri)} is unreachable: {reason}"


def tag_failed_run(message: str) -> None:
    """Record an error on the run `mlflow run` created, when the step failed before using it."""
    run_id = os.environ.get("MLFLOW_RUN_ID")
    if run_id:
        with contextlib.suppress(Exception):
            _client().set_tag(run_id, names.ERROR_TAG, mask_url(message)[:names.MAX_ERROR_LENGTH])


def run_step(step: str, parameters: dict[str, Any], *, env_manager: str = "local",
             entry_point: str | None = None, parent_run_id: str | None = None) -> str:
    """Run another entry point of this project, as a child of `parent_run_id` (default: the
    active run); its run ID.

    `entry_point` is the MLproject entry point to run (default: `step`); the run is named `step`
    either way, so several steps can share one entry point. Synchronous on purpose: MLflow runs
    the entry point's command directly, where an asynchronous run would start a whole extra
    `mlflow run` process per step; `main` runs independent steps side by side by calling this
    on several threads (steps/lib/orchestration/scheduler.py). Raises StepFailed naming the step and its run
    when it does not finish."""
    import re

    from mlflow import projects
    from mlflow.exceptions import ExecutionException

    try:
        with _active_in_this_thread(parent_run_id):
            submitted = projects.run(
                uri=str(PROJECT_DIR),
                entry_point=entry_point or step,
                parameters={k: str(v) for k, v in parameters.items()},
                env_manager=env_manager,
                run_name=step,
                synchronous=True,
            )
    except ExecutionException as error:
        failed = re.search(r"Run \(ID '([0-9a-f]+)'\) failed", str(error))
        raise StepFailed(step, failed.group(1) if failed else "not created") from None
    return submitted.run_id


@contextlib.contextmanager
def _active_in_this_thread(run_id: str | None) -> Iterator[None]:
    """Make `run_id` the active run of this thread while `mlflow.run` creates a step run, so
    the step run is nested under it. MLflow keeps the active run per thread and nests a project
    run under the active one, with no parameter to name the parent; a thread `main` starts for
    a step has none. Nothing is written: the run stays as it is in the store."""
    from mlflow.tracking import fluent

    active = mlflow.active_run()
    if run_id is None or (active and active.info.run_id == run_id):
        yield
        return
    stack = fluent._active_run_stack.get()  # MLflow's own per-thread stack (no public setter)
    stack.append(mlflow.ActiveRun(_client().get_run(run_id)))
    try:
        yield
    finally:
        stack.pop()


def create_run(name: str, *, tags: dict[str, str], experiment: str | None = None,
               parent_run_id: str | None = None) -> str:
    """A RUNNING run that a step can later resume (through MLFLOW_RUN_ID), in `experiment` (a
    name or workspace path) or in the parent's experiment; its ID. For orchestrators other than
    `mlflow run`, e.g. a Databricks job's tasks."""
    client = _client()
    if parent_run_id:
        experiment_id = client.get_run(parent_run_id).info.experiment_id
        tags = {MLFLOW_PARENT_RUN_ID: parent_run_id, **tags}
    else:
        experiment_id = mlflow.set_experiment(experiment).experiment_id
    return client.create_run(experiment_id, tags={MLFLOW_RUN_NAME: name, **tags}, run_name=name).info.run_id


def end_failed(run_id: str, message: str) -> None:
    """End a run FAILED with the (masked) reason in `tabtune.error`, unless it already ended."""
    client = _client()
    with contextlib.suppress(Exception):
        if client.get_run(run_id).info.status == "RUNNING":
            log_results(tags={names.ERROR_TAG: mask_url(message)[:names.MAX_ERROR_LENGTH]}, run_id=run_id)
            client.set_terminated(run_id, RunStatus.to_string(RunStatus.FAILED))


def end_killed(run_ids: list[str], signal_name: str) -> None:
    """End each run that is still RUNNING KILLED, tagged with the signal that stopped it. Best
    effort, one run at a time: it runs while the process is being stopped."""
    client = _client()
    for run_id in run_ids:
        with contextlib.suppress(Exception):
            if client.get_run(run_id).info.status == "RUNNING":
                log_results(tags={names.INTERRUPTED_TAG: signal_name}, run_id=run_id)
                client.set_terminated(run_id, RunStatus.to_string(RunStatus.KILLED))


def end_interrupted_steps(pipeline_run_id: str, signal_name: str, since_ms: int | None = None) -> None:
    """After a signal, end KILLED what is left under the pipeline run: step runs still RUNNING,
    their RUNNING trial runs whose worker process (tag tabtune.worker) is gone from this host
    (never another worker's live trial on a shared study), and step runs that the signal stopped
    but that MLflow then marked FAILED (its `_wait_for` cancels the step and then compares the
    status string with status numbers, so it never sees that the run had ended).

    A step run stopped by the signal is one that ended itself KILLED (tag tabtune.interrupted),
    or, given `since_ms` (when this process got the signal), one that ended FAILED at or after it
    without an error of its own (tag tabtune.error): a step SIGKILLed before it could tag its run,
    or whose own tagging call failed while it was being stopped. A step that failed by itself
    keeps FAILED and its message."""
    from steps.lib.process_identity import Worker

    client = _client()
    with contextlib.suppress(Exception):
        experiment_id = client.get_run(pipeline_run_id).info.experiment_id

        def children(run_id: str, status: str) -> list:
            return client.search_runs(
                [experiment_id], f"tags.`{MLFLOW_PARENT_RUN_ID}` = '{run_id}' and attributes.status = '{status}'",
                max_results=50000)

        for run in children(pipeline_run_id, "FAILED"):
            tags = run.data.tags
            stopped_by_signal = since_ms is not None and names.ERROR_TAG not in tags and (
                run.info.end_time or 0) >= since_ms
            if names.INTERRUPTED_TAG in tags or stopped_by_signal:
                with contextlib.suppress(Exception):
                    if names.INTERRUPTED_TAG not in tags:
                        log_results(tags={names.INTERRUPTED_TAG: signal_name}, run_id=run.info.run_id)
                    client.set_terminated(run.info.run_id, RunStatus.to_string(RunStatus.KILLED))
        steps = [run.info.run_id for run in children(pipeline_run_id, "RUNNING")]
        trials = [run.info.run_id for step in steps for run in children(step, "RUNNING")
                  if (worker := Worker.parse(run.data.tags.get(names.WORKER_TAG, ""))) and worker.is_dead_here()]
        end_killed(steps + trials, signal_name)


def end_finished(run_id: str) -> None:
    _client().set_terminated(run_id, RunStatus.to_string(RunStatus.FINISHED))


def resolve_run(run_id: str, param: str, expected_steps: tuple[str, ...], *, allow_running: bool = False):
    """The run `run_id` (or, for a pipeline's stand-in of a reused run, the original), checked
    to be FINISHED (or RUNNING, if allowed) and made by one of `expected_steps`."""
    try:
        run = _client().get_run(run_id)
        if names.REUSED_FROM_TAG in run.data.tags:  # a pipeline's stand-in: the work is in the original
            run = _client().get_run(run.data.tags[names.REUSED_FROM_TAG])
    except Exception as error:  # MLflow raises several kinds for a bad ID
        raise InputError(param, f"no run {run_id!r} in the tracking store") from error
    step = run.data.tags.get(names.STEP_TAG)
    if step not in expected_steps:
        raise InputError(
            param,
            f"run {run_id} is a {step or 'non-tabtune'!r} run; expected a {' or '.join(expected_steps)} run",
        )
    if run.info.status != "FINISHED" and not (allow_running and run.info.status == "RUNNING"):
        raise InputError(param, f"run {run_id} ({step}) is {run.info.status}, not FINISHED")
    return run


def find_latest_run(step: str, tags: dict[str, str] | None = None) -> str | None:
    """The newest FINISHED run of `step` in the active experiment with the given tags, if any
    (the original, when the newest is a pipeline's stand-in for a reused run)."""
    clauses = [f"tags.`{names.STEP_TAG}` = '{step}'", "attributes.status = 'FINISHED'"]
    clauses += [f"tags.`{key}` = '{value}'" for key, value in (tags or {}).items()]
    experiment_id = mlflow.active_run().info.experiment_id
    runs = _client().search_runs(
        [experiment_id], " and ".join(clauses), order_by=["attributes.start_time DESC"], max_results=1
    )
    return (runs[0].data.tags.get(names.REUSED_FROM_TAG) or runs[0].info.run_id) if runs else None


def find_keyed_run(step: str, key: str) -> str | None:
    """The newest FINISHED run of `step` in the active experiment that ran with cache key `key`
    (stand-ins carry no key, so this is always a run that did the work)."""
    clauses = [f"tags.`{names.STEP_TAG}` = '{step}'", "attributes.status = 'FINISHED'",
               f"tags.`{names.CACHE_KEY_TAG}` = '{key}'"]
    runs = _client().search_runs([mlflow.active_run().info.experiment_id], " and ".join(clauses),
                                 order_by=["attributes.start_time DESC"], max_results=1)
    return runs[0].info.run_id if runs else None


def record_reused_step(step: str, original_run_id: str, pipeline_run_id: str) -> str:
    """A FINISHED child of the pipeline run standing for `original_run_id`, which the pipeline
    reused instead of running `step` again: tagged with the original, its metrics copied, so
    the pipeline still shows every step. Its ID."""
    client = _client()
    original = client.get_run(original_run_id)
    run_id = create_run(step, tags={names.STEP_TAG: step, names.REUSED_FROM_TAG: original_run_id},
                        parent_run_id=pipeline_run_id)
    log_results(metrics=original.data.metrics, run_id=run_id)
    end_finished(run_id)
    return run_id


def run_tags(run_id: str) -> dict[str, str]:
    return _client().get_run(run_id).data.tags


def run_status(run_id: str) -> str | None:
    """RUNNING, FINISHED, FAILED or KILLED; None if there is no such run (deleted, or another store)."""
    try:
        return _client().get_run(run_id).info.status
    except MlflowException:
        return None


def run_metrics(run_id: str) -> dict[str, float]:
    return _client().get_run(run_id).data.metrics


def run_params(run_id: str) -> dict[str, str]:
    return _client().get_run(run_id).data.params


def set_tags(tags: dict[str, str]) -> None:
    """Tags on the active run, in one call."""
    log_results(tags=tags)


def log_results(
    params: dict[str, Any] | None = None,
    metrics: dict[str, float] | None = None,
    tags: dict[str, str] | None = None,
    run_id: str | None = None,
) -> None:
    """Params, metrics and tags on a run (the active one by default) in one batched call."""
    run_id = run_id or mlflow.active_run().info.run_id
    now = int(time.time() * 1000)
    _client().log_batch(
        run_id,
        metrics=[Metric(k, float(v), now, 0) for k, v in (metrics or {}).items()],
        params=[Param(k, str(v)[:names.MAX_PARAM_LENGTH]) for k, v in (params or {}).items()],
        tags=[RunTag(k, str(v)) for k, v in (tags or {}).items()],
    )


def interrupted_study_trials(step: str, study_name: str, own_run_id: str) -> tuple[str | None, list]:
    """The newest earlier run of `step` on study `study_name` that did not finish (KILLED, FAILED,
    or left RUNNING), unless one finished since, and its FINISHED trial child runs: what an
    interrupted in-memory study had done before its process went away."""
    experiment_id = mlflow.active_run().info.experiment_id
    runs = _client().search_runs(
        [experiment_id], f"tags.`{names.STEP_TAG}` = '{step}' and tags.`{names.STUDY_NAME_TAG}` = '{study_name}'",
        order_by=["attributes.start_time DESC"], max_results=20)
    for run in runs:
        if run.info.run_id == own_run_id:
            continue
        if run.info.status == "FINISHED":
            return None, []
        return run.info.run_id, [child for child in child_runs(run.info.run_id) if child.info.status == "FINISHED"]
    return None, []


def child_runs(parent_run_id: str) -> list:
    """Direct children of a run (for checks and summaries, never inside a trial)."""
    run = _client().get_run(parent_run_id)
    return _client().search_runs(
        [run.info.experiment_id], f"tags.`{MLFLOW_PARENT_RUN_ID}` = '{parent_run_id}'",
        max_results=50000,
    )

