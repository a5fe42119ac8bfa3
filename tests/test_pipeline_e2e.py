"""The whole pipeline through the real `mlflow run` CLI, tiny budgets, a temporary sqlite store."""

from __future__ import annotations

import re

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.exceptions import MlflowException

from steps.lib.orchestration import pipeline as wiring
from tests.conftest import TINY, check, make_frame

pytestmark = pytest.mark.slow

# The two tutorial families and the third one, so the generic tuning step runs end to end too.
FAMILIES = ("lasso", "catboost", "hist_gradient_boosting")
STEPS = ["prepare", "tune_lasso", "tune_catboost", "tune_hist_gradient_boosting", "refit", "package"]
ENTRY_POINTS = {step.name: step.entry_point for step in wiring.steps(FAMILIES)}


def pipeline_run_id(result) -> str:
    """The last run ID `mlflow run` reports is the one it started itself: the pipeline run."""
    return re.findall(r"Run \(ID '([0-9a-f]+)'\) succeeded", result.stderr)[-1]


@pytest.fixture(scope="session")
def pipeline(session_store):
    """Two pipeline runs with the same seed in one store."""
    params = {**TINY, "families": ",".join(FAMILIES)}
    first = pipeline_run_id(check(session_store.run("main", params)))
    # reuse=none: the second pipeline really recomputes every step, to show the seeds hold.
    second = pipeline_run_id(check(session_store.run("main", {**params, "reuse": "none"})))
    return session_store, first, second


def step_runs(store, pipeline_id: str) -> dict:
    children = store.children(pipeline_id)
    return {run.data.tags["tabtune.step"]: run for run in children}


def test_hierarchy_counts_and_parent_tags(pipeline):
    store, pipeline_id, _ = pipeline
    steps = step_runs(store, pipeline_id)
    assert sorted(steps) == sorted(STEPS) and len(store.children(pipeline_id)) == len(STEPS)
    pipeline_run = store.client.get_run(pipeline_id)
    for step, run in steps.items():
        assert run.info.status == "FINISHED"
        assert run.data.tags["mlflow.project.entryPoint"] == ENTRY_POINTS[step]
        assert pipeline_run.data.tags[f"tabtune.run_id.{step}"] == run.info.run_id
    # The runs list's Dataset column: the pipeline run shows the same datasets as its prepare run.
    datasets = {(i.dataset.name, i.dataset.digest) for i in pipeline_run.inputs.dataset_inputs}
    assert datasets == {(i.dataset.name, i.dataset.digest) for i in steps["prepare"].inputs.dataset_inputs}
    assert {name for name, _ in datasets} == {"train", "val", "test"}
    alpha_runs = store.children(steps["tune_lasso"].info.run_id)
    assert sorted(float(r.data.params["alpha"]) for r in alpha_runs) == [0.01, 0.1, 1.0]
    trial_runs = store.children(steps["tune_catboost"].info.run_id)
    assert sorted(int(r.data.metrics["trial_number"]) for r in trial_runs) == [0, 1, 2]
    for run in trial_runs:
        assert run.data.tags["tabtune.trial_state"] == "complete" and run.info.status == "FINISHED"
        assert run.data.params["iterations"] == "30" and "learning_rate" in run.data.params
        assert {"val_rmse", "val_mae", "val_r2", "fit_s"} <= set(run.data.metrics)
    boosting_runs = store.children(steps["tune_hist_gradient_boosting"].info.run_id)
    assert sorted(int(r.data.metrics["trial_number"]) for r in boosting_runs) == [0, 1, 2]
    assert {r.data.params["max_iter"] for r in boosting_runs} == {"30"}
    for leaf in [*alpha_runs, *trial_runs, *boosting_runs]:
        assert store.children(leaf.info.run_id) == []
    assert pipeline_run.data.metrics["test_rmse"] == steps["refit"].data.metrics["test_rmse"]


def test_tuning_steps_run_side_by_side_and_every_step_waits_for_its_inputs(pipeline):
    """The tuning steps need only prepare's run, so `main` runs them side by side, two at a
    time (parallel_steps=2, the first two listed first), but never two that fill every core
    (the Optuna-tuned families): LASSO runs beside CatBoost, HistGradientBoosting after
    CatBoost; refit needs them all and starts after the last one ended."""
    store, pipeline_id, _ = pipeline
    steps = step_runs(store, pipeline_id)
    tuning = [steps[name].info for name in STEPS if name.startswith("tune_")]
    first, second = tuning[:2]
    assert max(first.start_time, second.start_time) < min(first.end_time, second.end_time)
    for run in tuning:
        assert sum(other.start_time <= run.start_time < other.end_time for other in tuning) <= 2
    catboost, third = steps["tune_catboost"].info, steps["tune_hist_gradient_boosting"].info
    assert third.start_time >= catboost.end_time
    assert min(run.start_time for run in tuning) >= steps["prepare"].info.end_time
    assert steps["refit"].info.start_time >= max(run.end_time for run in tuning)
    assert steps["package"].info.start_time >= steps["refit"].info.end_time


def test_exactly_one_best_model_in_a_pipeline(pipeline):
    store, pipeline_id, _ = pipeline
    descendants, frontier = [], [pipeline_id]
    while frontier:
        children = store.children(frontier.pop())
        descendants += children
        frontier += [c.info.run_id for c in children]
    best = [r for r in descendants if r.data.tags.get("best_model") == "true"]
    assert len(best) == 1 and best[0].data.tags["tabtune.step"] == "refit"


def test_tuning_step_runs_record_their_best(pipeline):
    store, pipeline_id, _ = pipeline
    steps = step_runs(store, pipeline_id)
    catboost = steps["tune_catboost"]
    trial_rmses = [r.data.metrics["val_rmse"] for r in store.children(catboost.info.run_id)]
    assert catboost.data.metrics["best_val_rmse"] == min(trial_rmses)
    artifacts = {a.path for a in store.client.list_artifacts(catboost.info.run_id)}
    assert {"best.json", "trials.csv", "plots"} <= artifacts
    plots = {a.path for a in store.client.list_artifacts(catboost.info.run_id, "plots")}
    assert "plots/optimization_history.png" in plots
    lasso = steps["tune_lasso"]
    best_alpha = float(lasso.data.params["best_alpha"])
    assert best_alpha in (0.01, 0.1, 1.0)
    assert ("tabtune.warning" in lasso.data.tags) == (best_alpha in (0.01, 1.0))


def test_registered_version_alias_and_lineage(pipeline):
    store, pipeline_id, second_id = pipeline
    steps = step_runs(store, pipeline_id)
    # The second pipeline (same seed) refit an identical model: registered once, named twice.
    versions = store.client.search_model_versions("name = 'tabtune_diabetes'")
    assert len(versions) == 1
    champion = store.client.get_model_version_by_alias("tabtune_diabetes", "champion")
    assert champion.tags["refit_run_id"] == steps["refit"].info.run_id
    assert champion.tags["tabtune.gate"] == "promoted"
    second_package = step_runs(store, second_id)["package"].data.params
    assert second_package["registered_version"] == str(champion.version) and second_package["registered_new"] == "False"
    first = versions[0]
    assert first.tags["data_run_id"] == steps["prepare"].info.run_id
    assert set(first.tags["tune_run_ids"].split(",")) == {
        steps[f"tune_{family}"].info.run_id for family in FAMILIES}
    card = {a.path for a in store.client.list_artifacts(steps["package"].info.run_id)}
    assert "model_card.md" in card


def test_model_loads_predicts_and_has_a_signature(pipeline):
    store, _, _ = pipeline
    mlflow.set_tracking_uri(store.uri)
    mlflow.set_registry_uri(store.uri)
    model = mlflow.pyfunc.load_model("models:/tabtune_diabetes@champion")
    signature = model.metadata.signature
    assert signature is not None and [c.name for c in signature.inputs.inputs][:2] == ["age", "sex"]
    example = model.input_example
    predictions = np.asarray(model.predict(example)).ravel()
    assert len(predictions) == len(example) and np.isfinite(predictions).all()
    with pytest.raises(MlflowException, match=r"(?s)Failed to enforce schema.*column age"):
        model.predict(example.assign(age="old"))


def test_refit_logs_preprocessor_leaderboard_and_plots(pipeline):
    store, pipeline_id, _ = pipeline
    refit = step_runs(store, pipeline_id)["refit"]
    assert refit.data.tags["best_model"] == "true"
    files = {a.path for a in store.client.list_artifacts(refit.info.run_id, "preprocessor")}
    assert files == {"preprocessor/preprocessor.skops", "preprocessor/scaler.json"}
    plots = {a.path for a in store.client.list_artifacts(refit.info.run_id, "plots")}
    assert {"plots/predicted_vs_actual.png", "plots/residuals.png"} <= plots
    mlflow.set_tracking_uri(store.uri)
    board = pd.read_csv(
        mlflow.artifacts.download_artifacts(run_id=refit.info.run_id, artifact_path="leaderboard.csv"))
    # cross-validated by default on a table this small: the blend has its row beside every family
    assert sorted(board["family"]) == sorted([*FAMILIES, "blend"]) and board["chosen"].sum() == 1
    chosen = board[board["chosen"]].iloc[0]
    # one score for every row (the mean of the folds' RMSEs): the blend is chosen only below every
    # family, a family only when it is the best of them
    judged = board if chosen["family"] == "blend" else board[board["family"] != "blend"]
    assert chosen["val_rmse"] == judged["val_rmse"].min()
    assert chosen["test_rmse"] == pytest.approx(refit.data.metrics["test_rmse"])


def test_rerun_with_same_seed_is_identical(pipeline):
    store, first_id, second_id = pipeline
    first, second = step_runs(store, first_id), step_runs(store, second_id)
    for step in ("tune_catboost", "tune_lasso", "tune_hist_gradient_boosting"):
        a, b = first[step].data, second[step].data
        best_a = {k: v for k, v in {**a.params, **a.tags}.items() if k.startswith("best_")}
        best_b = {k: v for k, v in {**b.params, **b.tags}.items() if k.startswith("best_")}
        assert len(best_a) >= 1 and best_a == best_b
        assert a.metrics["best_val_rmse"] == b.metrics["best_val_rmse"]
    assert {"best_depth", "best_learning_rate", "best_trial"} <= set(first["tune_catboost"].data.tags)
    assert first["refit"].data.metrics["test_rmse"] == second["refit"].data.metrics["test_rmse"]
    digest = "tabtune.data_digest"
    assert first["prepare"].data.tags[digest] == second["prepare"].data.tags[digest]


def test_standalone_tune_catboost_on_a_fresh_store(store):
    check(store.run("tune_catboost", {"trials": 2, "iterations": 20}))
    (tune,) = store.runs_of("tune_catboost")
    children = store.children(tune.info.run_id)
    prepares = [r for r in children if r.data.tags.get("tabtune.step") == "prepare"]
    trials = [r for r in children if "tabtune.trial_state" in r.data.tags]
    assert len(prepares) == 1 and len(trials) == 2
    assert tune.data.tags["tabtune.data_run_id"] == prepares[0].info.run_id
    # A second standalone run reuses that prepare run instead of splitting again.
    check(store.run("tune_catboost", {"trials": 1, "iterations": 20}))
    assert len(store.runs_of("prepare")) == 1
    data_runs = {r.data.tags["tabtune.data_run_id"] for r in store.runs_of("tune_catboost")}
    assert data_runs == {prepares[0].info.run_id}


def test_csv_with_categorical_columns_gets_its_own_champion_after_diabetes(pipeline, tmp_path):
    """A user's own table after the quick start, in the same store: it starts its own registered
    model (named after the file), takes that model's alias, and the console's lines say so and
    load it; the diabetes champion is untouched."""
    store = pipeline[0]
    diabetes = store.client.get_model_version_by_alias("tabtune_diabetes", "champion").version
    frame = make_frame(n_rows=150, seed=3)
    frame.loc[[1, 2], "y"] = np.nan
    path = tmp_path / "shop.csv"
    frame.to_csv(path, index=False)
    result = check(store.run("main", {**TINY, "data": str(path), "target": "y", "trials": 2}))
    lines = result.stdout.splitlines()
    assert "main: Registered tabtune_shop version 1; @champion now points to it." in lines
    assert "main: load the model: mlflow.pyfunc.load_model('models:/tabtune_shop@champion')" in lines
    assert store.client.get_model_version_by_alias("tabtune_diabetes", "champion").version == diabetes
    run = store.client.get_run(pipeline_run_id(result))
    page = (f"http://127.0.0.1:5000/#/experiments/{run.info.experiment_id}/runs/{run.info.run_id}"
            "?workflowType=machine_learning")
    assert any(line.startswith("main: results are in ") and line.endswith(f"(then open {page})") for line in lines)
    steps = step_runs(store, pipeline_run_id(result))
    prepare = steps["prepare"]
    assert prepare.data.metrics["rows_dropped_missing_target"] == 2
    mlflow.set_tracking_uri(store.uri)
    schema = mlflow.artifacts.load_dict(f"runs:/{prepare.info.run_id}/schema.json")
    assert schema["categorical"] == ["colour", "size"] and sum(schema["rows"].values()) == 148
    inputs = {i.tags[0].value for i in store.client.get_run(prepare.info.run_id).inputs.dataset_inputs}
    assert inputs == {"train", "val", "test"}
    model = mlflow.pyfunc.load_model(steps["refit"].data.tags["tabtune.model_uri"])
    example = model.input_example
    assert {"colour", "size"} <= set(example.columns)
    unseen = example.assign(colour="purple")
    assert np.isfinite(np.asarray(model.predict(unseen), dtype=float)).all()
