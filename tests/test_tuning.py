import math

import numpy as np
import pytest

from steps.lib.families import get_family
from steps.lib.model.training import refit_and_test
from steps.lib.search import sampling, studies
from steps.lib.search.tuning import COMPLETE, FAILED, best_result, evaluate_grid, optimize


def test_grid_reports_every_point_in_order(splits):
    seen = []
    results = evaluate_grid(get_family("lasso"), [{"alpha": a} for a in (1.0, 0.1, 0.01)], splits, seed=0,
                            on_trial=seen.append)
    assert [r.params["alpha"] for r in seen] == [1.0, 0.1, 0.01]
    assert all(r.state == COMPLETE and r.metrics["val_rmse"] > 0 and r.fit_s >= 0 for r in results)
    assert best_result(results).value == min(r.value for r in results)


def new_study(seed=0, pruner="none", iterations=20):
    study, created = studies.create_or_load("t", None, sampling.make_sampler(seed, parallel=False),
                                            sampling.make_pruner(pruner, iterations))
    assert created
    return study


def test_optimize_is_seeded_and_reports_each_trial(splits):
    family = get_family("catboost")
    first, second = [], []
    study = optimize(family, splits, study=new_study(5), trials=3, iterations=20, seed=5,
                     on_trial=first.append)
    optimize(family, splits, study=new_study(5), trials=3, iterations=20, seed=5, on_trial=second.append)
    assert [r.number for r in first] == [0, 1, 2] and len(study.trials) == 3
    assert [r.params for r in first] == [r.params for r in second]
    assert [r.value for r in first] == [r.value for r in second]
    assert all(r.params["iterations"] == 20 and "learning_rate" in r.params for r in first)
    assert study.best_value == best_result(first).value


def test_failed_trial_is_reported_not_fatal(splits):
    class Breaking(type(get_family("catboost"))):
        """CatBoost, except that the second trial's fit raises."""

        name = "breaking"
        calls = 0

        def build(self, params, splits, seed):
            Breaking.calls += 1
            if Breaking.calls == 2:
                raise RuntimeError("boom")
            return super().build(params, splits, seed)

    results = []
    optimize(Breaking(), splits, study=new_study(), trials=3, iterations=10, seed=0, on_trial=results.append)
    assert [r.state for r in results] == [COMPLETE, FAILED, COMPLETE]
    assert "boom" in results[1].error and math.isinf(results[1].value)


def test_refit_scores_on_test(splits):
    fitted = refit_and_test(get_family("lasso"), {"alpha": 0.01}, splits, 0, max_iterations=10,
                            early_stopping_rounds=5)
    assert set(fitted.metrics) == {"test_rmse", "test_mae", "test_r2"} and fitted.metrics["test_r2"] > 0.5


def test_pruning_stops_the_bad_region_and_never_picks_a_pruned_trial(splits):
    from steps.lib.families.catboost import CatBoostFamily
    from steps.lib.search.tuning import PRUNED

    class TwoRegions(CatBoostFamily):
        """A learning rate of 1e-4 barely moves from the mean: an obviously bad region."""

        def space(self, trial):
            return {"learning_rate": trial.suggest_categorical("learning_rate", [1e-4, 0.2]), "depth": 3}

    results = []
    study = optimize(TwoRegions(), splits, study=new_study(3, pruner="median", iterations=100), trials=16,
                     iterations=100, seed=3, prune=True, on_trial=results.append)
    pruned = [r for r in results if r.state == PRUNED]
    assert pruned and all(r.params["learning_rate"] == 1e-4 for r in pruned)
    assert all(r.metrics["pruned_at_iteration"] < 100 for r in pruned)
    assert study.best_trial.params["learning_rate"] == 0.2
    assert best_result(results).state == COMPLETE and best_result(results).value == study.best_value


def test_cross_validated_pruning_stops_a_bad_trial_after_a_fold_and_never_picks_it(splits):
    """validation=cv with a pruner: a trial in the bad region is stopped between folds (its
    later folds never fitted), for a family that reports no progress while fitting as well."""
    from steps.lib.families.lasso import LassoFamily
    from steps.lib.search.tuning import PRUNED, Validation

    class TwoRegions(LassoFamily):
        """alpha 1e3 zeroes every coefficient: predicting the mean, an obviously bad region."""

        def space(self, trial):
            return {"alpha": trial.suggest_categorical("alpha", [1e3, 1e-3])}

    results = []
    study = optimize(TwoRegions(), splits, study=new_study(3, pruner="median", iterations=3), trials=12,
                     iterations=3, seed=3, prune=True, validation=Validation(folds=3), on_trial=results.append)
    pruned = [r for r in results if r.state == PRUNED]
    assert pruned and all(r.params["alpha"] == 1e3 for r in pruned)
    assert all(r.metrics["pruned_after_fold"] < 2 and "fold_2_rmse" not in r.metrics for r in pruned)
    assert study.best_trial.params["alpha"] == 1e-3 and best_result(results).state == COMPLETE


@pytest.mark.parametrize("scale", [1.0, 2e5, 3e6])
def test_the_lasso_grid_means_the_same_at_any_target_scale(scale):
    """1 → 0.001 spans 'every coefficient zero' to 'almost unregularised' whatever the target's
    unit (houses in the hundreds of thousands, a target in the millions), without convergence
    warnings."""
    import warnings

    import numpy as np

    from steps.lib.data.tables import split_frame
    from tests.conftest import make_frame

    frame = make_frame(n_rows=200, seed=2)
    frame["y"] = frame["y"] * scale + 10 * scale
    splits = split_frame(frame, "y", val_size=0.2, test_size=0.2, seed=3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a ConvergenceWarning fails the test
        results = evaluate_grid(get_family("lasso"), [{"alpha": a} for a in (1.0, 0.1, 0.01, 0.001)], splits, seed=0)
    rmse = [r.value / scale for r in results]
    assert rmse[0] == pytest.approx(np.std(splits.val["y"] / scale, ddof=0), rel=0.25)  # alpha 1: a constant
    assert rmse[0] > 2 * rmse[-1]  # the small alphas fit the signal


def test_fits_on_data_prepared_once_equal_fits_on_frames(splits):
    """CatBoost's Pools, built once per step, give the very models a fit on frames gives."""
    import numpy as np

    from steps.lib.model.training import fit_and_score

    family = get_family("catboost")
    params = {"depth": 4, "learning_rate": 0.1, "iterations": 30}
    shared = family.fit_data(splits)
    assert shared.train_y is None and shared.train_x.num_row() == len(splits.train)
    once = fit_and_score(family, params, splits, seed=3, data=shared)
    x_train, y_train = splits.xy("train")
    x_val, _ = splits.xy("val")
    plain = family.build(params, splits, seed=3).fit(x_train, y_train)
    np.testing.assert_array_equal(once.model.predict(x_val), plain.predict(x_val))


# ------------------------------------------------------------------------------ cross-validation
def test_cv_folds_cut_train_and_val_into_disjoint_held_out_parts(splits):
    folds = splits.cv_folds(4)
    x_train_val, _ = splits.train_val()
    held_out = sorted(row for fold in folds for row in fold.val.index)
    assert held_out == list(range(len(x_train_val)))  # every train+val row held out exactly once
    for fold in folds:
        assert set(fold.train.index).isdisjoint(fold.val.index)
        assert len(fold.train) + len(fold.val) == len(x_train_val)
        assert fold.test is splits.test
    again = splits.cv_folds(4)
    assert [list(f.val.index) for f in again] == [list(f.val.index) for f in folds]  # seeded


def test_validation_auto_cross_validates_up_to_the_row_limit_and_holds_out_above():
    from steps.lib.options import AUTO_CV_MAX_CELLS, AUTO_CV_MAX_ROWS
    from steps.lib.search.tuning import Validation

    assert Validation.of("auto", 4, rows=AUTO_CV_MAX_ROWS, features=AUTO_CV_MAX_CELLS // AUTO_CV_MAX_ROWS) == \
        Validation(folds=4)
    assert Validation.of("auto", 4, rows=AUTO_CV_MAX_ROWS + 1, features=1) == Validation(folds=0)
    # ames: wide, costly folds; held out, each trial on its own reshuffle of train+val
    assert Validation.of("auto", 4, rows=2_344, features=79) == Validation(folds=0, reshuffle=True)
    assert Validation.of("auto", 4, rows=22_524, features=6) == Validation(folds=4)  # cps1988: measured to pay
    assert Validation.of("cv", 4, rows=10 * AUTO_CV_MAX_ROWS).name == "cv"  # asked for, whatever the size
    assert Validation.of("holdout", 4, rows=100).name == "holdout"


def test_validation_auto_cross_validates_the_final_model_of_tables_too_long_to_tune_over_folds():
    """On a table too long (not too wide) for cross-validated tuning, up to the final limits,
    tuning holds out and refit weighs its two candidates over folds; a wide table of few rows
    (ames) and tables above the limits (the 10M-row run) hold out in both; asked for, a setting
    is what both do. A table held out for its width, not its length, has its final model blended
    on val; the tutorial's holdout, asked for, keeps the one candidate lowest on val."""
    from steps.lib.options import AUTO_CV_FINAL_MAX_CELLS, AUTO_CV_FINAL_MAX_ROWS, AUTO_CV_MAX_ROWS
    from steps.lib.search.tuning import Validation

    diamonds = {"rows": 43_152, "features": 9}
    assert Validation.of("auto", 5, **diamonds) == Validation(folds=0)  # held out for its length: one fixed split
    assert Validation.of("holdout", 5, rows=2_344, features=79) == Validation(folds=0)  # the tutorial's fixed split
    assert Validation.of("auto", 5, rows=8_000_000, features=8) == Validation(folds=0)
    assert Validation.of("auto", 5, **diamonds, final=True) == Validation(folds=5)
    # ames: wide, so held out, and its final model the average of its candidates
    assert Validation.of("auto", 5, rows=2_344, features=79, final=True) == Validation(folds=0, average_on_val=True)
    assert Validation.of("auto", 5, rows=22_524, features=6, final=True) == Validation(folds=5)  # cps1988: cv tuned
    assert Validation.of("auto", 5, rows=AUTO_CV_MAX_ROWS + 1, features=1, final=True) == Validation(folds=5)
    assert Validation.of("auto", 5, rows=AUTO_CV_FINAL_MAX_ROWS + 1, final=True) == Validation(folds=0)
    assert Validation.of("auto", 5, rows=AUTO_CV_FINAL_MAX_ROWS, features=AUTO_CV_FINAL_MAX_CELLS
                         // AUTO_CV_FINAL_MAX_ROWS + 1, final=True) == Validation(folds=0, average_on_val=True)
    assert Validation.of("auto", 5, rows=8_000_000, features=8, final=True) == Validation(folds=0)
    assert Validation.of("holdout", 5, rows=100, final=True) == Validation(folds=0)
    assert Validation.of("cv", 5, rows=10**7, final=True) == Validation(folds=5)


def test_a_reshuffle_cuts_train_and_val_again_at_their_sizes_seeded_by_the_trial_number(splits):
    first, again, other = splits.reshuffled(3), splits.reshuffled(3), splits.reshuffled(4)
    x_train_val, _ = splits.train_val()
    assert (len(first.train), len(first.val)) == (len(splits.train), len(splits.val))
    rows = sorted(map(tuple, np.vstack([first.train[x_train_val.columns].to_numpy(),
                                        first.val[x_train_val.columns].to_numpy()])))
    assert rows == sorted(map(tuple, x_train_val.to_numpy()))  # every train+val row, each once
    assert first.test is splits.test
    assert first.val.equals(again.val) and first.train.equals(again.train)  # seeded
    assert not first.val.equals(other.val) and not first.val.equals(splits.val.reset_index(drop=True))


def test_a_reshuffling_holdout_scores_each_trial_on_its_own_split(splits, monkeypatch):
    """Each trial's val RMSE is its parameters' fit on its own reshuffle (the trial number
    seeds it), not on the val split every trial of a plain holdout shares, whose fit data is
    then never built."""
    from steps.lib.model.training import fit_and_score
    from steps.lib.search.tuning import Validation

    family, results, built_for = get_family("catboost"), [], []
    build = family.fit_data
    monkeypatch.setattr(family, "fit_data", lambda rows: built_for.append(rows) or build(rows))
    optimize(family, splits, study=new_study(2), trials=3, iterations=20, seed=2,
             validation=Validation(reshuffle=True), on_trial=results.append)
    assert len(built_for) == 3 and not any(rows is splits for rows in built_for)  # one a trial, on its own rows
    fixed = []
    optimize(family, splits, study=new_study(2), trials=3, iterations=20, seed=2, on_trial=fixed.append)
    for result, shared in zip(results, fixed, strict=True):
        assert result.params == shared.params  # the same proposals: the first trials are sampled at random
        own = fit_and_score(family, result.params, splits.reshuffled(result.number), 2).metrics["val_rmse"]
        assert result.value == pytest.approx(own, rel=1e-12)
        assert result.value != pytest.approx(shared.value, rel=1e-6)


def test_cv_folds_refuse_too_few_rows_naming_folds(splits):
    from steps.lib.errors import InputError

    rows = len(splits.train_val()[1])
    folds = rows // 4  # 4 rows a fold: fewer than the 5 a fold needs
    with pytest.raises(InputError, match=rf"^folds: {rows} train\+val rows are too few for {folds} folds"):
        splits.cv_folds(folds)


def test_cross_validate_scores_every_fold_and_predicts_every_row_once(splits):
    from steps.lib.model.training import cross_validate

    family = get_family("catboost")
    folds = splits.cv_folds(3)
    params = {**family.fixed_params(iterations=200), "learning_rate": 0.3, "depth": 3}
    scored = cross_validate(family, params, folds, 0, data=[family.fit_data(f) for f in folds],
                            early_stopping_rounds=5)
    fold_rmses = [scored.metrics[f"fold_{i}_rmse"] for i in range(3)]
    assert scored.metrics["val_rmse"] == pytest.approx(sum(fold_rmses) / 3)
    assert scored.metrics["val_rmse_std"] > 0
    assert all(1 <= scored.metrics[f"fold_{i}_trees"] <= 200 for i in range(3))
    assert not any(math.isnan(p) for p in scored.out_of_fold)  # each row predicted by the fold that left it out
    lasso = get_family("lasso")
    plain = cross_validate(lasso, {"alpha": 0.1}, folds, 0, data=[lasso.fit_data(f) for f in folds],
                           early_stopping_rounds=5)
    assert "fold_0_trees" not in plain.metrics  # a family that does not stop early reports no tree count


def test_cross_validation_stops_when_told_after_a_fold(splits):
    from steps.lib.model.training import cross_validate

    family, folds, seen = get_family("lasso"), splits.cv_folds(3), []
    stopped = cross_validate(family, {"alpha": 0.1}, folds, 0, data=[family.fit_data(f) for f in folds],
                             early_stopping_rounds=5, after_fold=lambda fold, mean: seen.append(fold) or fold < 1)
    assert stopped is None and seen == [0, 1]


def test_optimize_with_cv_ranks_trials_by_their_mean_fold_rmse(splits):
    from steps.lib.search.tuning import Validation

    results = []
    study = optimize(get_family("catboost"), splits, study=new_study(3), trials=2, iterations=30, seed=3,
                     validation=Validation(folds=3, early_stopping_rounds=5), on_trial=results.append)
    for result in results:
        folds = [result.metrics[f"fold_{i}_rmse"] for i in range(3)]
        assert result.value == pytest.approx(sum(folds) / 3)
    assert study.best_value == min(r.value for r in results)
    holdout = []
    optimize(get_family("catboost"), splits, study=new_study(3), trials=2, iterations=30, seed=3,
             on_trial=holdout.append)
    assert "fold_0_rmse" not in holdout[0].metrics and holdout[0].value != results[0].value


def test_cross_validated_boosting_stops_on_each_held_out_fold_and_is_scored_where_it_stopped(splits):
    """HistGradientBoosting stops on the held-out fold once it has not improved for the rounds
    given, instead of fitting its whole budget, and the fold is scored by the model it ends with
    (the same trees fitted in full, cut there), not by its best iteration on those very rows."""
    from steps.lib.model.training import cross_validate

    family, folds = get_family("hist_gradient_boosting"), splits.cv_folds(3)
    params = {"learning_rate": 0.3, "max_leaf_nodes": 15, "min_samples_leaf": 5, "max_iter": 300}
    scored = cross_validate(family, params, folds, 0, data=[family.fit_data(f) for f in folds],
                            early_stopping_rounds=10)
    for number, fold in enumerate(folds):
        full = family.build(params, fold, 0).fit(*fold.xy("train"))
        x_val, y_val = fold.xy("val")
        stages = full[-1].staged_predict(full[:-1].transform(x_val))
        staged = [np.sqrt(np.mean((predicted - y_val.to_numpy()) ** 2)) for predicted in stages]
        trees = int(scored.metrics[f"fold_{number}_trees"])
        assert trees < 300
        assert np.argmin(staged[:trees]) + 1 <= trees - 10  # its last 10 iterations did not improve
        assert scored.metrics[f"fold_{number}_rmse"] == pytest.approx(staged[trees - 1])


def test_cross_validated_catboost_folds_are_scored_where_they_stopped_not_at_their_best(splits):
    """CatBoost's tuning folds stop on their held-out rows and are scored by the trees they end
    with: scoring the best tree count, chosen on those very rows, flattered every trial's
    out-of-fold predictions, and the blend that trusted them (BENCHMARKS.md)."""
    from steps.lib.model.training import cross_validate

    family, folds = get_family("catboost"), splits.cv_folds(3)
    params = {**family.fixed_params(iterations=300), "learning_rate": 0.3, "depth": 4}
    scored = cross_validate(family, params, folds, 0, data=[family.fit_data(f) for f in folds],
                            early_stopping_rounds=10)
    for number, fold in enumerate(folds):
        full = family.build(params, fold, 0)
        full.fit(*fold.xy("train"))
        x_val, y_val = fold.xy("val")
        staged = [np.sqrt(np.mean((predicted - y_val.to_numpy()) ** 2)) for predicted in full.staged_predict(x_val)]
        trees = int(scored.metrics[f"fold_{number}_trees"])
        assert trees < 300
        assert np.argmin(staged[:trees]) + 1 <= trees - 10  # its last 10 trees did not improve
        assert scored.metrics[f"fold_{number}_rmse"] == pytest.approx(staged[trees - 1])
        assert scored.metrics[f"fold_{number}_rmse"] > min(staged[:trees])
