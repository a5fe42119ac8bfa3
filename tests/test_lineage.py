"""Which earlier runs a step builds on (steps/lib/orchestration/lineage.py), against a real temporary sqlite store.

Runs are made directly with the client, each with its own start time, so "the latest" never
depends on two runs being created in different milliseconds."""

from __future__ import annotations

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from steps.lib import names
from steps.lib.errors import InputError
from steps.lib.orchestration import lineage


class Runs:
    """Makes tagged runs with given statuses and start times in one experiment of the test store."""

    def __init__(self, client: MlflowClient, experiment_id: str):
        self.client = client
        self.experiment_id = experiment_id
        self.clock = 1_700_000_000_000

    def make(self, step: str, status: str = "FINISHED", **tags: str) -> str:
        self.clock += 1000
        run = self.client.create_run(self.experiment_id, start_time=self.clock,
                                     tags={names.STEP_TAG: step, **tags})
        if status != "RUNNING":
            self.client.set_terminated(run.info.run_id, status, end_time=self.clock + 500)
        return run.info.run_id


@pytest.fixture(scope="module")
def store_uri(tmp_path_factory):
    """One sqlite store for the module (creating one takes over a second); each test gets its own
    experiment in it, so "the latest run" only ever sees the test's own runs."""
    directory = tmp_path_factory.mktemp("lineage")
    uri = f"sqlite:///{directory / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as patch:
        # The store's Default experiment puts its artifacts in ./mlruns of whoever creates it.
        patch.chdir(directory)
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        mlflow.set_tracking_uri(uri)
        MlflowClient(uri).search_experiments()
        yield uri
        mlflow.set_tracking_uri(None)


@pytest.fixture
def runs(store_uri, tmp_path, monkeypatch, request) -> Runs:
    for name in ("MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_NAME"):
        monkeypatch.delenv(name, raising=False)
    client = MlflowClient(store_uri)
    experiment_id = client.create_experiment(request.node.name,
                                             artifact_location=(tmp_path / "artifacts").as_uri())
    # mlflow.start_run() uses this experiment; both settings are undone after the test (another
    # test's mlflow.set_experiment() may have left a process-wide active experiment behind).
    monkeypatch.setattr(mlflow.tracking.fluent, "_active_experiment_id", None)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_ID", experiment_id)
    return Runs(client, experiment_id)


def default_prepare(runs: Runs, status: str = "FINISHED") -> str:
    return runs.make(names.PREPARE, status, **{names.DATA_SETTINGS_TAG: lineage.DEFAULT_DATA_SETTINGS})


# ------------------------------------------------------------------------------------- data_run
def test_data_run_accepts_a_finished_prepare_run(runs):
    prepare = runs.make(names.PREPARE)
    assert lineage.data_run(prepare) == prepare


def test_data_run_rejects_a_run_of_another_step(runs):
    refit = runs.make(names.REFIT)
    expected = rf"^data_run_id: run {refit} is a 'refit' run; expected a prepare run"
    with pytest.raises(InputError, match=expected):
        lineage.data_run(refit)


def test_data_run_rejects_a_failed_prepare_run(runs):
    failed = runs.make(names.PREPARE, "FAILED")
    with pytest.raises(InputError, match=rf"^data_run_id: run {failed} \(prepare\) is FAILED, not FINISHED"):
        lineage.data_run(failed)


def test_data_run_rejects_an_unknown_run_id(runs):
    with pytest.raises(InputError, match=r"^data_run_id: no run '0123abcd' in the tracking store"):
        lineage.data_run("0123abcd")


def test_empty_data_run_is_the_latest_finished_prepare_run_with_default_settings(runs):
    default_prepare(runs)
    latest = default_prepare(runs)
    runs.make(names.PREPARE, **{names.DATA_SETTINGS_TAG: "other settings"})  # newer, other settings
    default_prepare(runs, "FAILED")  # newer, not finished
    runs.make(names.REFIT, **{names.DATA_SETTINGS_TAG: lineage.DEFAULT_DATA_SETTINGS})  # newer, other step
    with mlflow.start_run(tags={names.STEP_TAG: names.TUNE_LASSO}):
        assert lineage.data_run("") == latest


# ------------------------------------------------------------------------------------ tune_runs
def test_tune_runs_returns_their_shared_data_run(runs):
    prepare = runs.make(names.PREPARE)
    lasso = runs.make(names.TUNE_LASSO, **{names.DATA_RUN_TAG: prepare})
    catboost = runs.make(names.tune_step("catboost"), **{names.DATA_RUN_TAG: prepare})
    assert lineage.tune_runs(f"{lasso}, {catboost}", "") == (prepare, [lasso, catboost])
    assert lineage.tune_runs(f"{lasso},{catboost}", prepare) == (prepare, [lasso, catboost])


def test_tune_runs_on_different_data_runs_are_rejected(runs):
    first, second = runs.make(names.PREPARE), runs.make(names.PREPARE)
    lasso = runs.make(names.TUNE_LASSO, **{names.DATA_RUN_TAG: first})
    catboost = runs.make(names.tune_step("catboost"), **{names.DATA_RUN_TAG: second})
    with pytest.raises(InputError, match=r"^tune_run_ids: tuning runs on different data runs"):
        lineage.tune_runs(f"{lasso},{catboost}", "")


def test_tune_runs_on_another_data_run_than_the_given_one_are_rejected(runs):
    used, other = runs.make(names.PREPARE), runs.make(names.PREPARE)
    lasso = runs.make(names.TUNE_LASSO, **{names.DATA_RUN_TAG: used})
    with pytest.raises(InputError, match=rf"^tune_run_ids: .* not data_run_id {other}"):
        lineage.tune_runs(lasso, other)


def test_a_worker_run_stands_for_the_tuning_run_whose_study_it_joined(runs):
    prepare = runs.make(names.PREPARE)
    tuning = runs.make(names.tune_step("catboost"), **{names.DATA_RUN_TAG: prepare})
    worker = runs.make(names.worker_step("catboost"), **{names.TUNING_RUN_TAG: tuning})
    lasso = runs.make(names.TUNE_LASSO, **{names.DATA_RUN_TAG: prepare})
    assert lineage.tune_runs(f"{lasso},{worker}", "") == (prepare, [lasso, tuning])


def test_tune_runs_rejects_a_run_that_is_not_a_tuning_run(runs):
    prepare = runs.make(names.PREPARE)
    with pytest.raises(InputError, match=rf"^tune_run_ids: run {prepare} is a 'prepare' run"):
        lineage.tune_runs(prepare, "")


# ------------------------------------------------------------------------------------ model_run
def test_model_run_accepts_a_finished_refit_run(runs):
    refit = runs.make(names.REFIT)
    assert lineage.model_run(refit) == refit


@pytest.mark.parametrize("step", [names.PREPARE, names.tune_step("catboost"), names.PACKAGE])
def test_model_run_rejects_other_runs(runs, step):
    other = runs.make(step)
    expected = rf"^model_run_id: run {other} is a '{step}' run; expected a refit run"
    with pytest.raises(InputError, match=expected):
        lineage.model_run(other)


def test_model_run_rejects_an_unfinished_refit_run(runs):
    running = runs.make(names.REFIT, "RUNNING")
    with pytest.raises(InputError, match=rf"^model_run_id: run {running} \(refit\) is RUNNING"):
        lineage.model_run(running)

