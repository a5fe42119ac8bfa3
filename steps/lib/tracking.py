"""Every MLflow call tabtune makes lives here: step runs, child runs, artifacts, models.

Steps hand each other run IDs; everything a step reads comes from the artifacts of the run it
was given, so a step works on any machine that shares the tracking server."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow
from mlflow.entities import Metric, Param, RunStatus, RunTag
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID, MLFLOW_RUN_NAME

from steps.lib import names
from steps.lib.errors import InputError
from steps.lib.secrets import mask_url

PROJECT_DIR = Path(__file__).resolve().parents[2]
MAX_PARAM_LENGTH = 6000


class StepFailed(Exception):
    """A step started through `mlflow.run` ended FAILED."""

    def __init__(self, step: str, run_id: str):
        super().__init__(f"step {step} failed (run {run_id})")
        self.step = step
        self.run_id = run_id


def _client() -> MlflowClient:
    return MlflowClient()


# ---------------------------------------------------------------------------------------- runs
@contextlib.contextmanager
def step_run(step: str, tags: dict[str, str] | None = None) -> Iterator[str]:
    """The run `mlflow run` made for this step (or a new one), tagged with the step name.

    Any error inside marks it FAILED with the message as a tag, so the UI says why."""
    with mlflow.start_run(tags={names.STEP_TAG: step, **(tags or {})}) as run:
        _mask_source_tags(run)
        try:
            yield run.info.run_id
        except BaseException as error:
            with contextlib.suppress(Exception):
                mlflow.set_tag(names.ERROR_TAG, mask_url(str(error))[:5000])
            raise


SOURCE_TAGS = ("mlflow.source.name", "mlflow.source.git.repoURL", "mlflow.gitRepoURL")


def _mask_source_tags(run) -> None:
    """MLflow records the project's git URL verbatim; a token in it must not stay in the store."""
    leaked = {key: mask_url(value) for key, value in run.data.tags.items()
              if key in SOURCE_TAGS and mask_url(value) != value}
    if leaked:
        log_results(tags=leaked, run_id=run.info.run_id)


def tag_failed_run(message: str) -> None:
    """Record an error on the run `mlflow run` created, when the step failed before using it."""
    run_id = os.environ.get("MLFLOW_RUN_ID")
    if run_id:
        with contextlib.suppress(Exception):
            _client().set_tag(run_id, names.ERROR_TAG, mask_url(message)[:5000])


def run_step(step: str, parameters: dict[str, Any], *, env_manager: str = "local",
             entry_point: str | None = None) -> str:
    """Run another entry point of this project as a child of the active run; its run ID.

    Synchronous on purpose: MLflow runs the entry point's command directly, where an
    asynchronous run would start a whole extra `mlflow run` process per step. Raises StepFailed
    naming the step and its run when it does not finish."""
    import re

    from mlflow import projects
    from mlflow.exceptions import ExecutionException

    try:
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
            log_results(tags={names.ERROR_TAG: mask_url(message)[:5000]}, run_id=run_id)
            client.set_terminated(run_id, RunStatus.to_string(RunStatus.FAILED))


def end_finished(run_id: str) -> None:
    _client().set_terminated(run_id, RunStatus.to_string(RunStatus.FINISHED))


def resolve_run(run_id: str, param: str, expected_steps: tuple[str, ...], *, allow_running: bool = False):
    """The run `run_id`, checked to be FINISHED (or RUNNING, if allowed) and made by one of
    `expected_steps`."""
    try:
        run = _client().get_run(run_id)
    except Exception as error:  # noqa: BLE001 - MLflow raises several kinds for a bad ID
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
    """The newest FINISHED run of `step` in the active experiment with the given tags, if any."""
    clauses = [f"tags.`{names.STEP_TAG}` = '{step}'", "attributes.status = 'FINISHED'"]
    clauses += [f"tags.`{key}` = '{value}'" for key, value in (tags or {}).items()]
    experiment_id = mlflow.active_run().info.experiment_id
    runs = _client().search_runs(
        [experiment_id], " and ".join(clauses), order_by=["attributes.start_time DESC"], max_results=1
    )
    return runs[0].info.run_id if runs else None


def run_tags(run_id: str) -> dict[str, str]:
    return _client().get_run(run_id).data.tags


def run_metrics(run_id: str) -> dict[str, float]:
    return _client().get_run(run_id).data.metrics


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
        params=[Param(k, str(v)[:MAX_PARAM_LENGTH]) for k, v in (params or {}).items()],
        tags=[RunTag(k, str(v)) for k, v in (tags or {}).items()],
    )


class ChildRunWriter:
    """One child run per trial under a parent run, through explicit run IDs (no fluent run
    stack, so any thread may write), three calls a trial: create at the start (so a crash
    leaves a RUNNING run to mark FAILED), then one batch and the final status at the end."""

    def __init__(self, parent_run_id: str):
        self.client = _client()
        self.parent_run_id = parent_run_id
        self.experiment_id = self.client.get_run(parent_run_id).info.experiment_id

    def start(self, name: str, tags: dict[str, str], started_ms: int | None = None) -> str:
        run = self.client.create_run(
            self.experiment_id,
            start_time=started_ms,
            tags={MLFLOW_PARENT_RUN_ID: self.parent_run_id, MLFLOW_RUN_NAME: name, **tags},
            run_name=name,
        )
        return run.info.run_id

    def finish(self, run_id: str, *, params: dict, metrics: dict, tags: dict, failed: bool,
               finished_ms: int | None = None) -> None:
        timestamp = finished_ms or int(time.time() * 1000)
        self.client.log_batch(
            run_id,
            metrics=[Metric(k, float(v), timestamp, 0) for k, v in metrics.items()],
            params=[Param(k, str(v)[:MAX_PARAM_LENGTH]) for k, v in params.items()],
            tags=[RunTag(k, str(v)) for k, v in tags.items()],
        )
        status = RunStatus.to_string(RunStatus.FAILED if failed else RunStatus.FINISHED)
        self.client.set_terminated(run_id, status, end_time=finished_ms)

    def write(self, *, name: str, params: dict, metrics: dict, tags: dict, failed: bool) -> str:
        """A finished child run in one go (for evaluations that cannot crash half-way)."""
        run_id = self.start(name, tags)
        self.finish(run_id, params=params, metrics=metrics, tags={}, failed=failed)
        return run_id

    def has_child(self, tag: str, value: str) -> bool:
        """Whether a child run with this tag value exists (used after crashes, never per trial)."""
        return bool(self.client.search_runs(
            [self.experiment_id],
            f"tags.`{MLFLOW_PARENT_RUN_ID}` = '{self.parent_run_id}' and tags.`{tag}` = '{value}'",
            max_results=1,
        ))

    def running_children(self) -> list:
        """Children still RUNNING: after a crash, the trials that never finished."""
        return self.client.search_runs(
            [self.experiment_id],
            f"tags.`{MLFLOW_PARENT_RUN_ID}` = '{self.parent_run_id}' and attributes.status = 'RUNNING'",
            max_results=50000,
        )


class BackgroundChildRunWriter:
    """A ChildRunWriter whose calls run on one background thread, in submission order, so a
    trial never waits for the tracking server. `flush()` waits for every queued call and raises
    if any failed; after a failure nothing more is sent and every later call raises at once,
    so a study never goes on with child runs silently missing."""

    def __init__(self, parent_run_id: str, writer: ChildRunWriter | None = None):
        import queue
        import threading

        self.writer = writer or ChildRunWriter(parent_run_id)
        self.parent_run_id = parent_run_id
        self._queue: queue.Queue = queue.Queue()
        self._run_ids: dict[int, str] = {}
        self._next_token = 0
        self._lock = threading.Lock()
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._drain, name="tabtune-child-runs", daemon=True)
        self._thread.start()

    def start(self, name: str, tags: dict[str, str], started_ms: int | None = None) -> int:
        """Queue the creation of a RUNNING child run; returns a token for `finish`."""
        with self._lock:
            token = self._next_token
            self._next_token += 1
        self._put(lambda: self._run_ids.__setitem__(
            token, self.writer.start(name, tags, started_ms or int(time.time() * 1000))))
        return token

    def finish(self, token: int, **result) -> None:
        result.setdefault("finished_ms", int(time.time() * 1000))
        self._put(lambda: self.writer.finish(self._run_ids.pop(token), **result))

    def running_children(self) -> list:
        self.flush()
        return self.writer.running_children()

    def flush(self) -> None:
        self._queue.join()
        self._raise_if_failed()

    def close(self) -> None:
        """Flush, then stop the thread."""
        try:
            self.flush()
        finally:
            self._queue.put(None)
            self._thread.join(timeout=60)

    def _put(self, call) -> None:
        self._raise_if_failed()
        self._queue.put(call)

    def _raise_if_failed(self) -> None:
        if self.error is not None:
            raise RuntimeError(f"logging a child run failed, so the study stops: {self.error}") from self.error

    def _drain(self) -> None:
        while (call := self._queue.get()) is not None:
            try:
                if self.error is None:
                    call()
            except BaseException as error:  # noqa: BLE001 - reported by flush()/the next call
                self.error = error
            finally:
                self._queue.task_done()
        self._queue.task_done()


def child_runs(parent_run_id: str) -> list:
    """Direct children of a run (for checks and summaries, never inside a trial)."""
    run = _client().get_run(parent_run_id)
    return _client().search_runs(
        [run.info.experiment_id], f"tags.`{MLFLOW_PARENT_RUN_ID}` = '{parent_run_id}'",
        max_results=50000,
    )


# ----------------------------------------------------------------------------------- artifacts
def _active_or(run_id: str | None) -> str:
    return run_id or mlflow.active_run().info.run_id


def log_json(obj: Any, artifact_file: str, run_id: str | None = None) -> None:
    _client().log_dict(_active_or(run_id), obj, artifact_file)


def log_text(text: str, artifact_file: str, run_id: str | None = None) -> None:
    _client().log_text(_active_or(run_id), text, artifact_file)


def log_table(frame, artifact_file: str, run_id: str | None = None) -> None:
    """A DataFrame as a CSV artifact (readable anywhere, diffable)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / Path(artifact_file).name
        frame.to_csv(path, index=False)
        parent = str(Path(artifact_file).parent)
        _client().log_artifact(_active_or(run_id), str(path), None if parent == "." else parent)


def log_figure(figure, artifact_file: str, run_id: str | None = None) -> None:
    import matplotlib.pyplot as plt

    _client().log_figure(_active_or(run_id), figure, artifact_file)
    plt.close(figure)


def log_files(files: dict[str, Any], artifact_dir: str) -> None:
    """Write several files with their writers in a temp dir and log them in one upload."""
    with tempfile.TemporaryDirectory() as tmp:
        for file_name, writer in files.items():
            writer(Path(tmp) / file_name)
        mlflow.log_artifacts(tmp, artifact_dir)


def download_json(run_id: str, artifact_file: str) -> Any:
    path = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=artifact_file)
    return json.loads(Path(path).read_text())


def download_dir(run_id: str, artifact_dir: str) -> Path:
    return Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=artifact_dir))


def log_split_inputs(splits, source: str) -> None:
    """Each split as an MLflow dataset input (train/val/test context), so lineage shows the data."""
    import warnings

    from mlflow.data.pandas_dataset import from_pandas

    for split in names.SPLITS:
        frame = getattr(splits, split)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "source can be interpreted in multiple ways"
            dataset = from_pandas(frame, source=source, targets=splits.target, name=split)
        mlflow.log_input(dataset, context=split)


# -------------------------------------------------------------------------------------- models
def log_model(family, model, x_example, predictions) -> str:
    """Log the model through its family's flavor with signature and input example; its URI.

    Explicit pip requirements spare MLflow the (slow) inference of them."""
    from mlflow.models import infer_signature

    options: dict[str, Any] = {}
    if family.flavor == "sklearn":
        import skops.io

        # Our own pipeline: trust exactly the types it is made of, nothing else.
        options["skops_trusted_types"] = skops.io.get_untrusted_types(data=skops.io.dumps(model))
    flavor = getattr(mlflow, family.flavor)
    info = flavor.log_model(
        model,
        name=names.MODEL_NAME,
        signature=infer_signature(x_example, predictions),
        input_example=x_example.head(5),
        pip_requirements=family.pip_requirements(),
        **options,
    )
    return info.model_uri


def load_pyfunc(model_uri: str):
    return mlflow.pyfunc.load_model(model_uri)


def register_model(model_uri: str, name: str, alias: str, tags: dict[str, str]):
    """A new registered version of `model_uri` with tags and alias; removed again if either fails,
    so nothing is left half-registered."""
    client = _client()
    version = mlflow.register_model(model_uri, name, tags=tags)
    try:
        client.set_registered_model_alias(name, alias, version.version)
    except BaseException:
        with contextlib.suppress(Exception):
            client.delete_model_version(name, version.version)
        raise
    return version

