"""The tracking package against a real sqlite store: child runs, the background writer and its
failure mode, masking of source tags, running a step's entry point, the splits as dataset inputs."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from steps.lib import names, tracking
from steps.lib.families import get_family
from steps.lib.search.tuning import optimize
from steps.lib.tracking import artifacts
from tests.conftest import in_process_store
from tests.test_tuning import new_study


@pytest.fixture
def parent(tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    client = MlflowClient(uri)
    run = client.create_run(client.get_experiment_by_name("Default").experiment_id)
    yield run.info.run_id
    mlflow.set_tracking_uri(None)


class FailingClient(MlflowClient):
    """A real client whose log_batch breaks after `ok` calls, like a tracking server going away."""

    def __init__(self, ok: int):
        super().__init__()
        self.ok = ok

    def log_batch(self, *args, **kwargs):
        if self.ok <= 0:
            raise ConnectionError("tracking server went away")
        self.ok -= 1
        return super().log_batch(*args, **kwargs)


def finish_args(value: float) -> dict:
    return {"params": {"p": value}, "metrics": {"val_rmse": value},
            "tags": {"tabtune.trial_state": "complete"}, "failed": False}


def test_background_writer_writes_everything_in_order(parent):
    writer = tracking.BackgroundChildRunWriter(parent)
    tokens = [writer.start(f"trial-{i}", {"tabtune.trial_number": str(i)}) for i in range(5)]
    for i, token in enumerate(tokens):
        writer.finish(token, **finish_args(float(i)))
    writer.close()
    children = tracking.child_runs(parent)
    assert sorted(float(r.data.params["p"]) for r in children) == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert {r.info.status for r in children} == {"FINISHED"}
    assert all(r.data.metrics["val_rmse"] == float(r.data.params["p"]) for r in children)


def test_a_dead_writer_stops_the_study_loudly_and_loses_no_finished_trial(parent, splits):
    inner = tracking.ChildRunWriter(parent)
    inner.client = FailingClient(ok=2)  # trials 0 and 1 are written, trial 2's results are not
    writer = tracking.BackgroundChildRunWriter(parent, writer=inner)
    reported, tokens = [], {}

    def on_start(number):
        # Wait for the writer to catch up before each trial, so the failure shows up during the
        # study at the same trial every time (without this, 8 fast trials can all be queued
        # before the background thread gets to the failing call, and only close() would raise).
        writer.flush()
        tokens[number] = writer.start(f"trial-{number}", {"tabtune.trial_number": str(number)})

    def on_trial(result):
        if result.number not in tokens:
            # on_start raised, so optuna FAILED the trial: like the step, re-raise the writer's
            # error from here (optuna catches errors in the objective, not in callbacks)
            writer.flush()
        writer.finish(tokens.pop(result.number), **finish_args(result.value))
        reported.append(result.number)

    with pytest.raises(RuntimeError, match=r"logging a child run failed.*went away"):
        optimize(get_family("catboost"), splits, study=new_study(), trials=8, iterations=10, seed=0,
                 on_start=on_start, on_trial=on_trial)
    assert reported == [0, 1, 2]  # trial 3 found the writer dead: the study stopped there
    # The writer stays failed: later calls and closing it raise instead of succeeding quietly.
    with pytest.raises(RuntimeError, match=r"logging a child run failed.*went away"):
        writer.start("trial-late", {})
    with pytest.raises(RuntimeError, match=r"logging a child run failed.*went away"):
        writer.close()
    finished = [r for r in tracking.child_runs(parent) if r.info.status == "FINISHED"]
    assert sorted(int(r.data.tags["tabtune.trial_number"]) for r in finished) == [0, 1]


def test_source_tags_with_credentials_are_masked(parent):
    client = MlflowClient()
    client.set_tag(parent, "mlflow.source.name", "https://user:tok3n@example.com/r.git")
    tracking.mask_source_tags(client.get_run(parent))
    assert client.get_run(parent).data.tags["mlflow.source.name"] == "https://user:***@example.com/r.git"


@pytest.mark.slow
@pytest.mark.parametrize(("step", "entry_point"), [("prepare", None), ("split_again", "prepare")])
def test_run_step_runs_the_entry_point_named_after_the_step_unless_told(tmp_path, monkeypatch, step, entry_point):
    """A real `mlflow.projects.run` of this project's prepare entry point (its step in a child
    process) against a sqlite store: the run is named after the step, runs the entry point of that
    name unless one is given, and gets the parameters as MLflow takes them, as text."""
    monkeypatch.setenv("PATH", str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"])
    with in_process_store(tmp_path) as (client, _):
        run = client.get_run(tracking.run_step(step, {"seed": 3}, entry_point=entry_point))
    assert run.info.status == "FINISHED"
    assert run.info.run_name == step
    assert run.data.tags["mlflow.project.entryPoint"] == "prepare"
    assert run.data.tags[names.STEP_TAG] == "prepare"  # this project's prepare step did the work
    assert run.data.params["seed"] == "3"


def test_split_inputs_name_every_column_and_count_every_row(tmp_path, monkeypatch, splits):
    monkeypatch.setattr(artifacts, "SCHEMA_SAMPLE_ROWS", 3)  # the schema comes from the first rows
    with in_process_store(tmp_path) as (client, _):
        with mlflow.start_run() as run:
            tracking.log_split_inputs(splits, source="memory")
        logged = {i.tags[0].value: i.dataset for i in client.get_run(run.info.run_id).inputs.dataset_inputs}
    assert set(logged) == {"train", "val", "test"}
    for split, dataset in logged.items():
        columns = {c["name"]: c["type"] for c in json.loads(dataset.schema)["mlflow_colspec"]}
        assert columns == {"x1": "double", "x2": "double", "colour": "string", "size": "string", "y": "double"}
        assert json.loads(dataset.profile)["num_rows"] == len(getattr(splits, split))


def test_a_trial_that_failed_before_it_was_announced_still_gets_its_child_run(parent):
    """A trial can fail before the step announces it (a storage call refused mid-restart): its
    end must still be logged, FAILED, and the other trials go on being logged."""
    with tracking.trial_runs(parent, tags={names.WORKER_TAG: "host:1"}, params={"family": "catboost"}) as trials:
        trials.started(0)
        trials.finished(1, params={"depth": 4}, metrics={}, state="failed", failed=True, error="storage refused")
        trials.finished(0, params={"depth": 6}, metrics={"val_rmse": 2.0}, state="complete", failed=False)
    children = {r.data.tags[names.TRIAL_NUMBER_TAG]: r for r in tracking.child_runs(parent)}
    assert set(children) == {"0", "1"}
    assert children["1"].info.status == "FAILED" and children["1"].data.tags[names.ERROR_TAG] == "storage refused"
    assert children["1"].data.params == {"depth": "4", "family": "catboost"}
    assert children["0"].info.status == "FINISHED" and children["0"].data.metrics["val_rmse"] == 2.0


def test_after_a_signal_a_step_run_it_stopped_ends_killed_and_one_that_failed_by_itself_stays_failed(parent):
    """MLflow marks every step `main` cancelled FAILED. The signal path turns back to KILLED the
    ones the signal stopped: tagged by the step itself, or ended at or after the signal with no
    error of their own (a step SIGKILLed, or whose own tagging failed, while it was stopping)."""
    client = MlflowClient()
    experiment_id = client.get_run(parent).info.experiment_id
    signal_ms = 1_000_000

    def step_run(ended_ms: int, tags: dict[str, str]) -> str:
        run_id = client.create_run(experiment_id, tags={"mlflow.parentRunId": parent, **tags}).info.run_id
        client.set_terminated(run_id, "FAILED", end_time=ended_ms)
        return run_id

    tagged = step_run(signal_ms + 5, {names.INTERRUPTED_TAG: "SIGINT"})
    untagged_after = step_run(signal_ms + 5, {})
    untagged_at = step_run(signal_ms, {})
    failed_by_itself = step_run(signal_ms + 5, {names.ERROR_TAG: "ValueError: bad"})
    failed_before = step_run(signal_ms - 5, {})

    tracking.end_interrupted_steps(parent, "SIGINT", signal_ms)

    def status(run_id: str) -> tuple[str, str | None]:
        run = client.get_run(run_id)
        return run.info.status, run.data.tags.get(names.INTERRUPTED_TAG)

    assert status(tagged) == status(untagged_after) == status(untagged_at) == ("KILLED", "SIGINT")
    assert status(failed_by_itself) == status(failed_before) == ("FAILED", None)


def test_without_the_signal_time_only_step_runs_that_tagged_themselves_end_killed(parent):
    """The path where a step failed and `main` stopped the others: no signal time, so an untagged
    FAILED step run (the one that failed, possibly SIGKILLed by the kernel) keeps FAILED."""
    client = MlflowClient()
    experiment_id = client.get_run(parent).info.experiment_id
    runs = {}
    for name, tags in (("stopped", {names.INTERRUPTED_TAG: "SIGTERM"}), ("failed", {})):
        runs[name] = client.create_run(experiment_id, tags={"mlflow.parentRunId": parent, **tags}).info.run_id
        client.set_terminated(runs[name], "FAILED")
    tracking.end_interrupted_steps(parent, "SIGTERM")
    assert client.get_run(runs["stopped"]).info.status == "KILLED"
    assert client.get_run(runs["failed"]).info.status == "FAILED"
