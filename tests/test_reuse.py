"""Whether `main` may reuse an earlier run of a step (steps/lib/orchestration/reuse.py): the step's cache key for
the parameters it is given, and the earlier run that key finds in a real temporary sqlite store,
for a tuning step on a shared study only once the study holds its whole budget and is idle."""

from __future__ import annotations

import itertools

import mlflow
import optuna
import pytest

from steps.lib import names
from steps.lib.orchestration import pipeline, reuse
from tests.conftest import in_process_store

PREPARE = pipeline.steps()[0]
TUNE_CATBOOST = pipeline.tuning_step("catboost")
_clock = itertools.count(1_700_000_000_000, 1000)  # start times a second apart: "the newest" is never a tie


# ----------------------------------------------------------------------------------- the key
def test_the_key_is_the_same_for_a_count_written_as_a_float():
    assert reuse.cache_key(TUNE_CATBOOST, {"trials": "50"}) == reuse.cache_key(TUNE_CATBOOST, {"trials": "50.0"})


def test_the_key_changes_with_a_parameter():
    assert reuse.cache_key(TUNE_CATBOOST, {"trials": "50"}) != reuse.cache_key(TUNE_CATBOOST, {"trials": "51"})


def test_an_env_storage_is_keyed_by_the_url_it_holds_never_by_the_url_itself(monkeypatch):
    def key(url: str) -> str:
        monkeypatch.setenv("TABTUNE_STORAGE", url)
        return reuse.cache_key(TUNE_CATBOOST, {"trials": "50", "storage": "env:TABTUNE_STORAGE"})

    first, second = key("postgresql://u:secret@db-a/optuna"), key("postgresql://u:secret@db-b/optuna")
    assert first and second and first != second  # two databases behind one variable: two keys
    assert key("postgresql://u:secret@db-a/optuna") == first
    monkeypatch.delenv("TABTUNE_STORAGE")
    assert reuse.cache_key(TUNE_CATBOOST, {"trials": "50", "storage": "env:TABTUNE_STORAGE"}) is None  # unset: runs


def test_no_key_for_a_value_the_step_would_refuse():
    assert reuse.cache_key(TUNE_CATBOOST, {"trials": "50.5"}) is None


def test_no_key_for_a_data_file_that_does_not_exist(tmp_path):
    assert reuse.cache_key(PREPARE, {"data": str(tmp_path / "missing.csv"), "target": "y"}) is None


def test_a_data_file_is_keyed_by_its_bytes_not_its_path(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "t.csv").write_text("x,y\n1,2\n3,4\n")
    (tmp_path / "b" / "t.csv").write_text("x,y\n1,2\n3,4\n")
    assert reuse.cache_key(PREPARE, {"data": str(tmp_path / "a" / "t.csv"), "target": "y"}) == reuse.cache_key(
        PREPARE, {"data": str(tmp_path / "b" / "t.csv"), "target": "y"})


def test_a_data_file_with_other_bytes_has_another_key(tmp_path):
    (tmp_path / "t.csv").write_text("x,y\n1,2\n3,4\n")
    before = reuse.cache_key(PREPARE, {"data": str(tmp_path / "t.csv"), "target": "y"})
    (tmp_path / "t.csv").write_text("x,y\n1,2\n3,5\n")
    assert reuse.cache_key(PREPARE, {"data": str(tmp_path / "t.csv"), "target": "y"}) != before


# ----------------------------------------------------------------------------- the earlier run
@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """One sqlite store for the module (creating one takes a second)."""
    with in_process_store(tmp_path_factory.mktemp("reuse")) as (client, _):
        yield client


@pytest.fixture
def pipeline_run(store, request):
    """A pipeline run in an experiment of the test's own, active as `main`'s is while it decides."""
    experiment_id = store.create_experiment(request.node.name)
    with mlflow.start_run(experiment_id=experiment_id) as run:
        yield run


def step_run(store, step: str, key: str, status: str = "FINISHED", **tags: str) -> str:
    """A run of `step` with cache key `key` in the active experiment, ended with `status`."""
    started = next(_clock)
    run = store.create_run(mlflow.active_run().info.experiment_id, start_time=started,
                           tags={names.STEP_TAG: step, names.CACHE_KEY_TAG: key, **tags})
    store.set_terminated(run.info.run_id, status, end_time=started + 500)
    return run.info.run_id


def test_no_key_finds_no_run(store, pipeline_run):
    step_run(store, "prepare", "k1")
    assert reuse.reusable_run(PREPARE, None, {}) is None


def test_the_newest_finished_run_with_the_key_is_reused(store, pipeline_run):
    step_run(store, "prepare", "k1")
    newest = step_run(store, "prepare", "k1")
    step_run(store, "prepare", "k1", status="FAILED")
    step_run(store, "prepare", "k2")
    assert reuse.reusable_run(PREPARE, "k1", {}) == newest


def test_a_run_of_another_step_with_the_key_is_not_reused(store, pipeline_run):
    step_run(store, "tune_lasso", "k1")
    assert reuse.reusable_run(PREPARE, "k1", {}) is None


# ------------------------------------------------------------------- a tuning run on a shared study
@pytest.fixture
def shared_study(tmp_path):
    """A study in a sqlite file, as workers share one: (storage URL, study)."""
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return url, optuna.create_study(study_name="tabtune-test", storage=url)


def fill(study, complete: int) -> None:
    for number in range(complete):
        study.add_trial(optuna.trial.create_trial(params={}, distributions={}, value=float(number)))


def tuning_run(store, study) -> str:
    return step_run(store, "tune_catboost", "k1", **{names.STUDY_NAME_TAG: study.study_name})


def test_a_tuning_run_whose_study_holds_its_budget_is_reused(store, pipeline_run, shared_study):
    url, study = shared_study
    fill(study, 3)
    found = tuning_run(store, study)
    assert reuse.reusable_run(TUNE_CATBOOST, "k1", {"storage": url, "trials": "3"}) == found


def test_a_tuning_run_whose_study_is_short_of_its_budget_is_not_reused(store, pipeline_run, shared_study):
    url, study = shared_study
    fill(study, 2)
    tuning_run(store, study)
    assert reuse.reusable_run(TUNE_CATBOOST, "k1", {"storage": url, "trials": "3"}) is None


def test_a_tuning_run_whose_study_has_a_trial_running_is_not_reused(store, pipeline_run, shared_study):
    url, study = shared_study
    fill(study, 3)
    study.ask()  # a worker is still on a trial: the summary is not final yet
    tuning_run(store, study)
    assert reuse.reusable_run(TUNE_CATBOOST, "k1", {"storage": url, "trials": "3.0"}) is None


def test_a_tuning_run_whose_study_cannot_be_read_is_not_reused(store, pipeline_run, shared_study, tmp_path):
    _, study = shared_study
    fill(study, 3)
    tuning_run(store, study)
    elsewhere = f"sqlite:///{tmp_path / 'other.db'}"  # no study of that name there
    assert reuse.reusable_run(TUNE_CATBOOST, "k1", {"storage": elsewhere, "trials": "3"}) is None


def test_a_refit_is_keyed_on_what_its_tuning_runs_hold_now(store, pipeline_run):
    """A shared study's tuning run gains trials and a new best after a refit read it: the refit's
    key changes, so the old refit never stands for one that would read the new best."""
    refit = next(step for step in pipeline.steps() if step.name == "refit")
    tuned = step_run(store, "tune_catboost", "k1")
    store.log_metric(tuned, "best_val_rmse", 3.0)
    store.log_metric(tuned, "trials_complete", 20)
    store.set_tag(tuned, "best_trial", "7")
    before = reuse.cache_key(refit, {"tune_run_ids": tuned})
    assert before and reuse.cache_key(refit, {"tune_run_ids": tuned}) == before
    store.log_metric(tuned, "trials_complete", 30)  # more workers finished trials; same best
    after_more = reuse.cache_key(refit, {"tune_run_ids": tuned})
    store.log_metric(tuned, "best_val_rmse", 2.5)
    store.set_tag(tuned, "best_trial", "26")
    assert len({before, after_more, reuse.cache_key(refit, {"tune_run_ids": tuned})}) == 3
