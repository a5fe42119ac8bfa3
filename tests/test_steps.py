"""Every step's `run()` in-process against a throwaway sqlite store: the logic of each step in
seconds, without the `mlflow run` subprocesses of the slow tests. One small pipeline is shared
by the assertions (module-scoped), and a throwaway fourth family, defined only here, goes
through the generic tuning step and refit."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys

import mlflow
import numpy as np
import pandas as pd
import pytest

from steps import package, prepare, refit, tune, tune_catboost, tune_lasso
from steps.lib import families, names
from steps.lib.errors import InputError
from steps.lib.families.base import Family
from steps.lib.names import PROJECT_DIR
from steps.lib.orchestration import lineage
from steps.lib.search import ensemble
from steps.lib.search.out_of_fold import load_out_of_fold
from tests.conftest import in_process_store, make_frame


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A sqlite tracking store and registry in a temp dir, as the default for this process."""
    directory = tmp_path_factory.mktemp("steps")
    with in_process_store(directory) as (client, _):
        csv = directory / "table.csv"
        make_frame(160, seed=3).to_csv(csv, index=False)
        yield client, str(csv)


REFIT_SAID: list[str] = []  # what refit printed in the module's pipeline


@pytest.fixture(scope="module")
def pipeline(store):
    """prepare → tune_lasso → tune_catboost → refit → package, each step's run() called directly."""
    _, csv = store
    ids = {"prepare": prepare.run(data=csv, target="y", val_size=0.2, test_size=0.2, seed=5)}
    ids["tune_lasso"] = tune_lasso.run(data_run_id=ids["prepare"], alphas="1,0.1,0.01", seed=5)
    ids["tune_catboost"] = tune_catboost.run(data_run_id=ids["prepare"], trials=2, iterations=20, seed=5,
                                             timeout_s=0)
    with contextlib.redirect_stdout(io.StringIO()) as said:
        ids["refit"] = refit.run(data_run_id="", tune_run_ids=f"{ids['tune_lasso']},{ids['tune_catboost']}",
                                 max_iterations=60, early_stopping_rounds=10)
    print(said.getvalue(), end="")
    REFIT_SAID[:] = said.getvalue().splitlines()
    ids["package"] = package.run(model_run_id=ids["refit"], registered_model_name="steps-test", alias="champion")
    return ids


def test_prepare_logs_splits_schema_and_row_counts(store, pipeline):
    client, _ = store
    run = client.get_run(pipeline["prepare"])
    assert run.data.tags[names.STEP_TAG] == names.PREPARE
    assert {k: run.data.metrics[f"rows_{k}"] for k in names.SPLITS} == {"train": 96, "val": 32, "test": 32}
    schema = json.loads(open(mlflow.artifacts.download_artifacts(run_id=run.info.run_id,
                                                                 artifact_path=names.SCHEMA_FILE)).read())
    assert schema["categorical"] == ["colour", "size"] and schema["numeric"] == ["x1", "x2"]


def test_tuning_steps_log_one_child_run_per_point_and_their_best(store, pipeline):
    client, _ = store
    for step, count in (("tune_lasso", 3), ("tune_catboost", 2)):
        run = client.get_run(pipeline[step])
        children = client.search_runs([run.info.experiment_id], f"tags.`mlflow.parentRunId` = '{pipeline[step]}'")
        assert len(children) == count and {c.info.status for c in children} == {"FINISHED"}
        best = min(c.data.metrics["val_rmse"] for c in children)
        assert run.data.metrics["best_val_rmse"] == pytest.approx(best)
        assert run.data.tags[names.STEP_TAG] == step
        assert run.data.tags[names.DATA_RUN_TAG] == pipeline["prepare"]


def test_refit_picks_the_family_with_the_best_val_rmse_and_scores_it_on_test(store, pipeline):
    client, _ = store
    run = client.get_run(pipeline["refit"])
    bests = {step: client.get_run(pipeline[step]).data.metrics["best_val_rmse"]
             for step in ("tune_lasso", "tune_catboost")}
    winner = min(bests, key=bests.get)
    assert run.data.tags[names.FAMILY_TAG] == winner.removeprefix("tune_")
    assert run.data.metrics["val_rmse"] == pytest.approx(bests[winner])
    assert run.data.tags[names.BEST_MODEL_TAG] == "true" and run.data.metrics["test_rmse"] > 0


def test_refit_says_which_candidate_the_model_is_and_what_each_scored_on_val(store, pipeline):
    """tabtune.refit_from and refit_val_rmse_<candidate> on the refit run, refit_from per family
    in the leaderboard: CatBoost weighs its tuned parameters against its own defaults and keeps
    the lower early-stopped val RMSE; LASSO has nothing to weigh."""
    client, _ = store
    run = client.get_run(pipeline["refit"])
    board = pd.read_csv(mlflow.artifacts.download_artifacts(run_id=pipeline["refit"],
                                                            artifact_path=names.LEADERBOARD_FILE))
    refit_from = dict(zip(board["family"], board["refit_from"], strict=True))
    assert refit_from["lasso"] == "tuned" and refit_from["catboost"] in ("tuned", "defaults")
    winner = run.data.tags[names.FAMILY_TAG]
    assert run.data.tags[names.REFIT_FROM_TAG] == refit_from[winner]
    weighed = {key.removeprefix("refit_val_rmse_"): value for key, value in run.data.metrics.items()
               if key.startswith("refit_val_rmse_")}
    if winner == "catboost":
        assert set(weighed) == {"tuned", "defaults"}
        assert refit_from["catboost"] == min(weighed, key=weighed.get)
    else:
        assert weighed == {}
    # ... and says so on the console: each candidate CatBoost weighed, and which it kept.
    [line] = [line for line in REFIT_SAID if line.startswith("refit: catboost weighed ")]
    assert f": kept {refit_from['catboost']} (" in line and line.count("val_rmse=") == 2


def test_package_registers_the_model_under_the_alias(store, pipeline):
    client, _ = store
    version = client.get_model_version_by_alias("steps-test", "champion")
    assert version.tags["refit_run_id"] == pipeline["refit"]
    # where its parameters came from, as the refit run says (tuned, or CatBoost's own defaults)
    assert version.tags[names.REFIT_FROM_TAG] == client.get_run(pipeline["refit"]).data.tags[names.REFIT_FROM_TAG]
    assert client.get_run(pipeline["package"]).data.params["registered_version"] == str(version.version)


def test_tune_refuses_an_unknown_family_and_a_pruner_for_a_family_that_cannot_prune(store, pipeline):
    with pytest.raises(InputError, match=r"^family: unknown model family 'nope'"):
        tune.run(family="nope", data_run_id=pipeline["prepare"], trials=1, iterations=5, seed=0, timeout_s=0)
    with pytest.raises(InputError, match=r"^pruner: hist_gradient_boosting reports no progress"):
        tune.run(family="hist_gradient_boosting", data_run_id=pipeline["prepare"], trials=1, iterations=5,
                 seed=0, timeout_s=0, pruner="median", validation="holdout")


class NearestNeighbours(Family):
    """A throwaway fourth family, defined only in this test: k nearest neighbours on one-hot
    and scaled features. No pruning, no early stopping, nothing to explain: all defaults."""

    name = "test_nearest_neighbours"

    def space(self, trial):
        return {"n_neighbors": trial.suggest_int("n_neighbors", 2, 15)}

    def build(self, params, splits, seed):
        from sklearn.neighbors import KNeighborsRegressor
        from sklearn.pipeline import Pipeline

        from steps.lib.data.features import build_preprocessor

        return Pipeline([("preprocess", build_preprocessor(splits.numeric, splits.categorical)),
                         ("regressor", KNeighborsRegressor(**params))])


def test_a_fourth_family_defined_here_is_tuned_and_refit_by_the_generic_steps(store, pipeline):
    client, _ = store
    families.register(NearestNeighbours)
    try:
        tuned = tune.run(family=NearestNeighbours.name, data_run_id=pipeline["prepare"], trials=3,
                         iterations=1, seed=1, timeout_s=0, validation="holdout")
        run = client.get_run(tuned)
        assert run.data.tags[names.STEP_TAG] == "tune_test_nearest_neighbours"
        children = client.search_runs([run.info.experiment_id], f"tags.`mlflow.parentRunId` = '{tuned}'")
        assert sorted(int(c.data.params["n_neighbors"]) >= 2 for c in children) == [True] * 3
        refit_run_id = refit.run(data_run_id="", tune_run_ids=tuned, max_iterations=10, early_stopping_rounds=5,
                                 validation="holdout")
        refitted = client.get_run(refit_run_id)
        assert refitted.data.tags[names.FAMILY_TAG] == NearestNeighbours.name
        model = mlflow.pyfunc.load_model(refitted.data.tags[names.MODEL_URI_TAG])
        assert np.isfinite(model.predict(model.input_example)).all()
    finally:
        families._REGISTRY.pop(NearestNeighbours.name, None)


def test_tuning_on_a_sample_of_the_training_rows_records_the_sample(store, pipeline):
    client, _ = store
    tuned = tune_catboost.run(data_run_id=pipeline["prepare"], trials=1, iterations=10, seed=5, timeout_s=0,
                              tune_rows=40)
    assert client.get_run(tuned).data.metrics["tune_rows"] == 40
    assert client.get_run(pipeline["tune_catboost"]).data.metrics["tune_rows"] == 96  # all of train
    # refit weighs CatBoost's candidates on the rows that tuning sampled (Family.refit_plan)
    from steps.lib.families import get_family

    refitted = client.get_run(refit.run(data_run_id="", tune_run_ids=tuned, max_iterations=60,
                                        early_stopping_rounds=5, validation="holdout"))
    best = json.loads(open(mlflow.artifacts.download_artifacts(run_id=tuned, artifact_path=names.BEST_FILE)).read())
    splits = lineage.load_splits(pipeline["prepare"])
    plans = {rows: get_family("catboost").refit_plan(best["params"], splits, splits.seed, max_iterations=60,
                                                     early_stopping_rounds=5, judge_rows=rows) for rows in (40, 0)}
    logged = {name: refitted.data.metrics[f"refit_val_rmse_{name}"] for name in ("tuned", "defaults")}
    assert logged == pytest.approx(plans[40].val_rmse)
    assert logged != pytest.approx(plans[0].val_rmse)  # not weighed on all of train
    assert json.loads(refitted.data.params["final_iterations"]) == plans[40].params["iterations"]


def test_cross_validated_tuning_logs_each_fold_and_ranks_by_their_mean(store, pipeline):
    """validation=cv: every child run holds each fold's RMSE (and CatBoost's tree count), the
    ranking score val_rmse is their mean, and a family that reports no progress while fitting can
    be pruned between folds."""
    client, _ = store
    lasso = tune_lasso.run(data_run_id=pipeline["prepare"], alphas="1,0.1", seed=5, validation="cv", folds=3)
    catboost = tune_catboost.run(data_run_id=pipeline["prepare"], trials=2, iterations=30, seed=5, timeout_s=0,
                                 validation="cv", folds=3)
    for run_id, fold_keys in ((lasso, ("fold_2_rmse",)), (catboost, ("fold_2_rmse", "fold_2_trees"))):
        experiment = client.get_run(run_id).info.experiment_id
        children = client.search_runs([experiment], f"tags.`mlflow.parentRunId` = '{run_id}'")
        assert children
        for child in children:
            metrics = child.data.metrics
            assert set(fold_keys) <= set(metrics)
            assert metrics["val_rmse"] == pytest.approx(np.mean([metrics[f"fold_{i}_rmse"] for i in range(3)]))
        assert client.get_run(run_id).data.metrics["best_val_rmse"] == min(c.data.metrics["val_rmse"] for c in children)
        # every candidate's out-of-fold predictions, beside the target, one row per train+val row
        path = mlflow.artifacts.download_artifacts(run_id=run_id,
                                                   artifact_path=f"{names.OUT_OF_FOLD_DIR}/{names.OUT_OF_FOLD_FILE}")
        table = pd.read_parquet(path)
        assert len(table) == 128 and len(table.columns) == 1 + len(children) and not table.isna().any().any()
        prepared = mlflow.artifacts.download_artifacts(run_id=pipeline["prepare"], artifact_path="splits")
        target = pd.concat([pd.read_parquet(f"{prepared}/{split}.parquet")["y"] for split in ("train", "val")])
        assert table["target"].tolist() == target.tolist()
    # validation=auto on a table this small is cv, on the same folds, and says so on the run
    auto = tune_lasso.run(data_run_id=pipeline["prepare"], alphas="1,0.1", seed=5, validation="auto", folds=3)
    assert client.get_run(auto).data.tags[names.VALIDATION_TAG] == client.get_run(lasso).data.tags[
        names.VALIDATION_TAG] == "cv"
    assert load_out_of_fold([auto])[1].values.tolist() == load_out_of_fold([lasso])[1].values.tolist()
    pruned = tune.run(family="hist_gradient_boosting", data_run_id=pipeline["prepare"], trials=1, iterations=5,
                      seed=0, timeout_s=0, pruner="median", validation="cv", folds=3)
    assert client.get_run(pruned).info.status == "FINISHED"
    # refit: the family by the same mean fold RMSE, or a blend of candidates that beats the best one
    # out of fold (ensemble selection on the predictions the tuning runs kept)
    final = client.get_run(refit.run(data_run_id="", tune_run_ids=f"{lasso},{catboost}", max_iterations=60,
                                     early_stopping_rounds=5, validation="cv", folds=3))
    best = {run_id: client.get_run(run_id).data.metrics["best_val_rmse"] for run_id in (lasso, catboost)}
    # the candidates refit weighed itself (CatBoost's defaults, over the same folds) are blended too,
    # and kept on the refit run beside the tuning runs' own
    target, predictions, candidates = load_out_of_fold([lasso, catboost, final.info.run_id])
    defaults = f"{final.info.run_id}:catboost_defaults"
    assert candidates[defaults]["family"] == "catboost" and set(candidates[defaults]["params"]) == {
        "loss_function", "learning_rate"}
    assert len(predictions.columns) == 1 + sum(len(load_out_of_fold([run])[1].columns) for run in (lasso, catboost))
    # every score is the mean of the folds' RMSEs: a family's best_val_rmse is its best candidate's
    # out-of-fold predictions scored fold by fold, and the blend is judged the same way
    folds = lineage.load_splits(pipeline["prepare"]).fold_numbers(3, len(target))
    for run_id in (lasso, catboost):
        own = predictions[[c for c in predictions.columns if c.startswith(f"{run_id}:")]]
        assert ensemble.select(target, own, rounds=1, folds=folds).best_single_rmse == pytest.approx(best[run_id])
    blend = ensemble.select(target, predictions, folds=folds)
    board = pd.read_csv(mlflow.artifacts.download_artifacts(run_id=final.info.run_id,
                                                            artifact_path=names.LEADERBOARD_FILE))
    prepared = mlflow.artifacts.download_artifacts(run_id=pipeline["prepare"], artifact_path="splits")
    test = pd.read_parquet(f"{prepared}/test.parquet")
    # final=bag: CatBoost's fold models, no refit, inside the one served model, which scores test
    # exactly as refit measured it
    bagged = client.get_run(refit.run(data_run_id="", tune_run_ids=catboost, max_iterations=60,
                                      early_stopping_rounds=5, validation="cv", folds=3, final="bag"))
    if bagged.data.params["family"] == "blend":  # of CatBoost trials and defaults: each member a bag
        members = json.loads(open(mlflow.artifacts.download_artifacts(run_id=bagged.info.run_id,
                                                                      artifact_path=names.BLEND_FILE)).read())
        assert [m["params"]["bag_folds"] for m in members] == [3] * len(members)
    else:
        assert bagged.data.params["final_bag_folds"] == "3"
    served = mlflow.pyfunc.load_model(bagged.data.tags[names.MODEL_URI_TAG])
    predicted = served.predict(test.drop(columns="y").astype({"colour": str, "size": str}))
    rmse = float(np.sqrt(np.mean((np.asarray(predicted) - test["y"].to_numpy()) ** 2)))
    assert rmse == pytest.approx(bagged.data.metrics["test_rmse"])
    blend_row = board[board["family"] == "blend"].iloc[0]
    assert blend_row["val_rmse"] == pytest.approx(blend.rmse) and bool(blend_row["chosen"]) == blend.beats_best_single
    if not blend.beats_best_single:
        assert final.data.params["family"] == ("lasso" if best[lasso] <= best[catboost] else "catboost")
        return
    assert final.data.params["family"] == "blend" and final.data.tags[names.REFIT_FROM_TAG] == "blend"
    members = json.loads(open(mlflow.artifacts.download_artifacts(run_id=final.info.run_id,
                                                                  artifact_path=names.BLEND_FILE)).read())
    assert {m["candidate"]: m["weight"] for m in members} == pytest.approx(blend.weights)
    # the one served model weighs its members: it scores test as refit measured the blend
    model = mlflow.pyfunc.load_model(final.data.tags[names.MODEL_URI_TAG])
    predicted = model.predict(test.drop(columns="y").astype({"colour": str, "size": str}))
    rmse = float(np.sqrt(np.mean((np.asarray(predicted) - test["y"].to_numpy()) ** 2)))
    assert rmse == pytest.approx(final.data.metrics["test_rmse"]) == pytest.approx(blend_row["test_rmse"])


def test_on_a_table_held_out_for_its_width_each_trial_is_scored_on_its_own_reshuffle(store, pipeline, monkeypatch):
    """validation=auto on a table too wide for folds (ames): one shared val split is what 50
    trials learn to fit, so each trial is fitted and scored on its own seeded reshuffle of
    train+val; the run says so, and the study is not the fixed split's."""
    from steps.lib.families import get_family
    from steps.lib.model.training import fit_and_score

    monkeypatch.setattr("steps.lib.search.tuning.AUTO_CV_MAX_CELLS", 1)  # this table is now "wide"
    client, _ = store
    run_id, fixed_id = (tune_catboost.run(data_run_id=pipeline["prepare"], trials=2, iterations=20, seed=5,
                                          timeout_s=0, validation=validation) for validation in ("auto", "holdout"))
    run, fixed = client.get_run(run_id), client.get_run(fixed_id)  # the tutorial's holdout, asked for: one split
    assert run.data.tags[names.VALIDATION_TAG] == "holdout" and run.data.tags[names.RESHUFFLED_TAG] == "true"
    assert fixed.data.tags[names.RESHUFFLED_TAG] == "false"
    assert run.data.tags[names.STUDY_NAME_TAG] != fixed.data.tags[names.STUDY_NAME_TAG]

    def val_rmse_by_trial(parent: str) -> dict[int, float]:
        children = client.search_runs([run.info.experiment_id], f"tags.`mlflow.parentRunId` = '{parent}'")
        return {int(c.data.metrics["trial_number"]): c.data.metrics["val_rmse"] for c in children}

    reshuffled, shared = val_rmse_by_trial(run_id), val_rmse_by_trial(fixed_id)
    assert set(reshuffled) == set(shared) == {0, 1}
    assert all(reshuffled[n] != pytest.approx(shared[n], rel=1e-6) for n in reshuffled)  # the same proposals
    best = json.loads(open(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=names.BEST_FILE)).read())
    splits = lineage.load_splits(pipeline["prepare"])
    own = fit_and_score(get_family("catboost"), best["params"], splits.reshuffled(best["trial"]), 5)
    assert own.metrics["val_rmse"] == pytest.approx(reshuffled[best["trial"]]) == pytest.approx(best["val_rmse"])


def test_on_a_table_held_out_for_its_width_the_final_model_averages_the_chosen_familys_candidates(
        store, pipeline, monkeypatch):
    """validation=auto on a table too wide for folds (ames): one val split ranks candidates too
    coarsely to trust its pick or to weigh them, so refit serves the equal-weight average of the
    chosen family's candidates (CatBoost's tuned parameters and its defaults), each refit on
    train+val with the count early stopping gave it, as the one model; a family with one
    candidate (LASSO) is served alone, as on the tutorial's holdout."""
    from steps.lib.families import get_family
    from steps.lib.model.blending import weighted_predictions

    monkeypatch.setattr("steps.lib.search.tuning.AUTO_CV_MAX_CELLS", 1)  # this table is now "wide"
    client, _ = store
    tune_ids = f"{pipeline['tune_lasso']},{pipeline['tune_catboost']}"
    both = client.get_run(refit.run(data_run_id="", tune_run_ids=tune_ids, max_iterations=60, early_stopping_rounds=10))
    board = pd.read_csv(mlflow.artifacts.download_artifacts(run_id=both.info.run_id,
                                                            artifact_path=names.LEADERBOARD_FILE))
    both_board = board.set_index("family")
    splits = lineage.load_splits(pipeline["prepare"])
    _, y_val = splits.xy("val")
    final = client.get_run(refit.run(data_run_id="", tune_run_ids=pipeline["tune_catboost"], max_iterations=60,
                                     early_stopping_rounds=10))
    run_id = final.info.run_id
    assert final.data.tags[names.VALIDATION_TAG] == "holdout"
    predictions, params = {}, {}
    for step, family in (("tune_catboost", "catboost"),):
        best = json.loads(open(mlflow.artifacts.download_artifacts(run_id=pipeline[step],
                                                                   artifact_path=names.BEST_FILE)).read())
        plan = get_family(family).refit_plan(best["params"], splits, splits.seed, max_iterations=60,
                                             early_stopping_rounds=10, val_predictions=True)
        for name, (final_params, predicted) in plan.held_out.items():
            predictions[f"{family}_{name}"], params[f"{family}_{name}"] = predicted, final_params
    assert set(predictions) == {"catboost_tuned", "catboost_defaults"}
    val_rmse = {name: float(np.sqrt(np.mean((np.asarray(predicted) - y_val.to_numpy()) ** 2)))
                for name, predicted in predictions.items()}
    # families ranked on this one val split, each by the candidate it kept, not by their tuning
    # runs' best val RMSE (a reshuffled trial's is on a split of its own)
    kept = both_board.loc["catboost", "refit_from"]
    assert both_board.loc["catboost", "val_rmse"] == pytest.approx(val_rmse[f"catboost_{kept}"])
    assert both_board.loc["catboost", "val_rmse"] != pytest.approx(best["val_rmse"])  # the tuning's best
    lasso_best = json.loads(open(mlflow.artifacts.download_artifacts(run_id=pipeline["tune_lasso"],
                                                                     artifact_path=names.BEST_FILE)).read())
    lasso_plan = get_family("lasso").refit_plan(lasso_best["params"], splits, splits.seed, max_iterations=60,
                                                early_stopping_rounds=10, val_predictions=True)
    [(_, lasso_val)] = lasso_plan.held_out.values()
    assert both_board.loc["lasso", "val_rmse"] == pytest.approx(float(np.sqrt(np.mean((lasso_val - y_val) ** 2))))
    assert both_board.loc["lasso", "val_rmse"] != pytest.approx(lasso_best["val_rmse"])  # tuned over folds here
    families = both_board.loc[["lasso", "catboost"]]
    assert families["chosen"].tolist() == (families["val_rmse"] == families["val_rmse"].min()).tolist()
    # LASSO, lowest on val here, is chosen; one candidate: served alone, nothing averaged
    assert both.data.params["family"] == "lasso" and both_board.loc["lasso", "chosen"]
    assert both.data.tags[names.REFIT_FROM_TAG] == "tuned" and "blend" not in both_board.index
    board = pd.read_csv(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=names.LEADERBOARD_FILE))
    blend_row = board[board["family"] == "blend"].iloc[0]
    average = np.mean([np.asarray(predicted) for predicted in predictions.values()], axis=0)
    assert blend_row["val_rmse"] == pytest.approx(float(np.sqrt(np.mean((average - y_val.to_numpy()) ** 2))))
    assert blend_row["best_single_val_rmse"] == pytest.approx(min(val_rmse.values()))
    assert blend_row["chosen"] and not board[board["family"] != "blend"]["chosen"].any()
    assert final.data.params["family"] == "blend" and final.data.tags[names.REFIT_FROM_TAG] == "blend"
    members = json.loads(open(mlflow.artifacts.download_artifacts(run_id=run_id,
                                                                  artifact_path=names.BLEND_FILE)).read())
    assert {m["candidate"]: m["weight"] for m in members} == {"catboost_tuned": 0.5, "catboost_defaults": 0.5}
    x_train_val, y_train_val = splits.train_val()
    expected = [(get_family("catboost").build(params[column], splits, splits.seed).fit(x_train_val, y_train_val),
                 0.5) for column in predictions]
    test = splits.test.drop(columns="y")
    served = mlflow.pyfunc.load_model(final.data.tags[names.MODEL_URI_TAG])
    assert np.asarray(served.predict(test.astype({"colour": str, "size": str}))) == pytest.approx(
        weighted_predictions(expected, test))
    # try_defaults=false leaves CatBoost one candidate: served alone, nothing averaged
    alone = client.get_run(refit.run(data_run_id="", tune_run_ids=pipeline["tune_catboost"], max_iterations=60,
                                     early_stopping_rounds=10, try_defaults=False))
    assert alone.data.params["family"] == "catboost" and alone.data.tags[names.REFIT_FROM_TAG] == "tuned"
    board = pd.read_csv(mlflow.artifacts.download_artifacts(run_id=alone.info.run_id,
                                                            artifact_path=names.LEADERBOARD_FILE))
    assert board["family"].tolist() == ["catboost"]


def test_tuned_on_the_holdout_the_final_model_is_still_weighed_over_folds(store, pipeline):
    """A table between auto's two limits: tuning held out, refit cross-validated. Refit weighs the
    tuned parameters and CatBoost's defaults over the folds itself, keeps both candidates'
    out-of-fold predictions on its run and blends those; the served model is made of the very
    fold models those predictions came from (the bags refit fitted), not of new fits."""
    from steps.lib.families import get_family
    from steps.lib.model.blending import Bag, weighted_predictions

    client, _ = store
    catboost = tune_catboost.run(data_run_id=pipeline["prepare"], trials=2, iterations=30, seed=1, timeout_s=0,
                                 validation="holdout")
    final = client.get_run(refit.run(data_run_id="", tune_run_ids=catboost, max_iterations=60,
                                     early_stopping_rounds=5, validation="cv", folds=3, final="bag"))
    run_id = final.info.run_id
    assert client.get_run(catboost).data.tags[names.VALIDATION_TAG] == "holdout"
    assert final.data.tags[names.VALIDATION_TAG] == "cv"
    target, predictions, candidates = load_out_of_fold([run_id])
    assert set(predictions.columns) == {f"{run_id}:catboost_tuned", f"{run_id}:catboost_defaults"}
    tuned = json.loads(open(mlflow.artifacts.download_artifacts(run_id=catboost, artifact_path=names.BEST_FILE)).read())
    assert candidates[f"{run_id}:catboost_tuned"]["params"] == {k: v for k, v in tuned["params"].items()
                                                                 if k != "iterations"}  # its tree count: refit's
    splits = lineage.load_splits(pipeline["prepare"])
    blend = ensemble.select(target, predictions, folds=splits.fold_numbers(3, len(target)))
    board = pd.read_csv(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=names.LEADERBOARD_FILE))
    assert board[board["family"] == "blend"].iloc[0]["val_rmse"] == pytest.approx(blend.rmse)
    plan = get_family("catboost").refit_plan(tuned["params"], splits, splits.seed, max_iterations=60,
                                             early_stopping_rounds=5, folds=3)
    bags = {f"{run_id}:catboost_{name}": Bag(models) for name, (_, models) in plan.bags.items()}
    assert blend.beats_best_single and len(blend.weights) == 2  # on this seed: tuned and defaults blended
    assert final.data.params["family"] == "blend"
    assert final.data.metrics["fit_s"] > 0  # the reused bags' fits are counted where they were made
    expected = [(bags[column], weight) for column, weight in blend.weights.items()]
    test = splits.test.drop(columns="y")
    served = mlflow.pyfunc.load_model(final.data.tags[names.MODEL_URI_TAG])
    assert np.asarray(served.predict(test.astype({"colour": str, "size": str}))) == pytest.approx(
        weighted_predictions(expected, test))


def test_on_such_a_table_the_third_family_is_weighed_over_folds_beside_catboost(store, pipeline):
    """Every family refit can weigh over folds is weighed there, not CatBoost alone: the third
    family tuned on the holdout is one more candidate of the blend, with the parameters its
    tuning chose, and a blend that takes it serves the bag refit fitted for it."""
    from steps.lib.families import get_family
    from steps.lib.model.blending import Bag, weighted_predictions

    client, _ = store
    tuned = {"catboost": tune_catboost.run(data_run_id=pipeline["prepare"], trials=2, iterations=30, seed=1,
                                           timeout_s=0, validation="holdout"),
             "hist_gradient_boosting": tune.run(family="hist_gradient_boosting", data_run_id=pipeline["prepare"],
                                                trials=2, iterations=30, seed=3, timeout_s=0, validation="holdout")}
    # refit in its own process, as a step always runs: its forked fits use OpenMP, which hangs in a
    # child forked from a process that used it already (this one, tuning the third family)
    # (asked to weigh it untuned too: it was tuned, so its tuned parameters are the candidate)
    subprocess.run([sys.executable, "-m", "steps.refit", "--tune-run-ids", ",".join(tuned.values()),
                    "--max-iterations", "60", "--early-stopping-rounds", "5", "--validation", "cv", "--folds", "3",
                    "--final", "bag", "--untuned-families", "hist_gradient_boosting"],
                   cwd=PROJECT_DIR, check=True, timeout=600)
    [final] = client.search_runs(["0"], f"tags.`{names.TUNE_RUNS_TAG}` = '{','.join(tuned.values())}'")
    run_id = final.info.run_id
    target, predictions, candidates = load_out_of_fold([run_id])
    assert set(predictions.columns) == {f"{run_id}:catboost_tuned", f"{run_id}:catboost_defaults",
                                        f"{run_id}:hist_gradient_boosting_tuned"}
    best = {family: json.loads(open(mlflow.artifacts.download_artifacts(run_id=tune_id,
                                                                         artifact_path=names.BEST_FILE)).read())
            for family, tune_id in tuned.items()}
    assert candidates[f"{run_id}:hist_gradient_boosting_tuned"]["params"] == best["hist_gradient_boosting"]["params"]
    splits = lineage.load_splits(pipeline["prepare"])
    blend = ensemble.select(target, predictions, folds=splits.fold_numbers(3, len(target)))
    assert f"{run_id}:hist_gradient_boosting_tuned" in blend.weights  # on this tuning seed the blend takes it
    assert blend.beats_best_single and final.data.params["family"] == "blend"
    bags = {f"{run_id}:{family}_{name}": Bag(models)
            for family, found in best.items()
            for name, (_, models) in get_family(family).refit_plan(
                found["params"], splits, splits.seed, max_iterations=60, early_stopping_rounds=5, folds=3).bags.items()}
    expected = [(bags[column], weight) for column, weight in blend.weights.items()]
    test = splits.test.drop(columns="y")
    served = mlflow.pyfunc.load_model(final.data.tags[names.MODEL_URI_TAG])
    assert np.asarray(served.predict(test.astype({"colour": str, "size": str}))) == pytest.approx(
        weighted_predictions(expected, test))


def test_a_family_nobody_tuned_is_weighed_untuned_over_the_folds_when_asked(store, pipeline):
    """`untuned_families`: where the final model is chosen over folds, the third family with its
    library's defaults is one more blend candidate, on the leaderboard as `untuned`; a blend
    that takes it serves the bag refit fitted for it."""
    from steps.lib.families import get_family
    from steps.lib.model.blending import Bag, weighted_predictions

    client, _ = store
    catboost = tune_catboost.run(data_run_id=pipeline["prepare"], trials=2, iterations=30, seed=0, timeout_s=0,
                                 validation="holdout")
    subprocess.run([sys.executable, "-m", "steps.refit", "--tune-run-ids", catboost, "--max-iterations", "60",
                    "--early-stopping-rounds", "5", "--validation", "cv", "--folds", "3", "--final", "bag",
                    "--untuned-families", "hist_gradient_boosting"], cwd=PROJECT_DIR, check=True, timeout=600)
    [final] = client.search_runs(["0"], f"tags.`{names.TUNE_RUNS_TAG}` = '{catboost}'",
                                 order_by=["attributes.start_time DESC"], max_results=1)
    run_id = final.info.run_id
    target, predictions, candidates = load_out_of_fold([run_id])
    untuned = f"{run_id}:hist_gradient_boosting_untuned"
    family = get_family("hist_gradient_boosting")
    assert set(predictions.columns) == {f"{run_id}:catboost_tuned", f"{run_id}:catboost_defaults", untuned}
    assert candidates[untuned] == {"family": "hist_gradient_boosting", "params": family.untuned_params}
    board = pd.read_csv(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=names.LEADERBOARD_FILE))
    [row] = board[board["refit_from"] == "untuned"].to_dict("records")
    splits = lineage.load_splits(pipeline["prepare"])
    plan = family.refit_plan(family.untuned_params, splits, splits.seed, max_iterations=60, early_stopping_rounds=5,
                             folds=3)
    assert row["family"] == "hist_gradient_boosting" and row["val_rmse"] == pytest.approx(plan.val_rmse["tuned"])
    blend = ensemble.select(target, predictions, folds=splits.fold_numbers(3, len(target)))
    assert untuned in blend.weights and final.data.params["family"] == "blend"  # on this tuning seed it takes it
    catboost_plan = get_family("catboost").refit_plan(
        json.loads(open(mlflow.artifacts.download_artifacts(run_id=catboost, artifact_path=names.BEST_FILE)).read())[
            "params"], splits, splits.seed, max_iterations=60, early_stopping_rounds=5, folds=3)
    bags = {untuned: Bag(plan.bags["tuned"][1]),
            **{f"{run_id}:catboost_{name}": Bag(models) for name, (_, models) in catboost_plan.bags.items()}}
    test = splits.test.drop(columns="y")
    served = mlflow.pyfunc.load_model(final.data.tags[names.MODEL_URI_TAG])
    assert np.asarray(served.predict(test.astype({"colour": str, "size": str}))) == pytest.approx(
        weighted_predictions([(bags[column], weight) for column, weight in blend.weights.items()], test))


def test_a_persistent_study_is_continued_only_under_the_same_settings(store, pipeline, tmp_path, capsys):
    """A rerun of a tuning step on a shared study with everything the same finds it full and says
    so; changing a setting that defines the trials (here tune_rows) starts another study, which
    runs its own trials instead of reporting the old best as new."""
    client, _ = store
    storage = f"journal:{tmp_path / 'studies.log'}"
    common = dict(family="catboost", data_run_id=pipeline["prepare"], trials=2, iterations=10, seed=0, timeout_s=0,
                  storage=storage, validation="holdout")
    first = tune.run(**common)
    capsys.readouterr()
    again = tune.run(**common)
    said = capsys.readouterr().out
    study = client.get_run(first).data.tags[names.STUDY_NAME_TAG]
    assert client.get_run(again).data.tags[names.STUDY_NAME_TAG] == study
    assert f"study {study!r} already holds 2 of its 2 trials: no trial left to run" in said
    sampled = tune.run(**common, tune_rows=40)
    assert client.get_run(sampled).data.tags[names.STUDY_NAME_TAG] != study
    assert len(client.search_runs([client.get_run(sampled).info.experiment_id],
                                  f"tags.`mlflow.parentRunId` = '{sampled}'")) == 2
