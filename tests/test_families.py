"""The contract every registered model family meets: a new family is covered as soon as its
module exists, with parameters from its own search space."""

import shutil

import numpy as np
import optuna
import pytest
from catboost import CatBoostError
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from steps.lib import families
from steps.lib.data.tables import conform, unconform
from steps.lib.families import Family, family_names, get_family
from steps.lib.families.base import RefitPlan

PARAMS = {"lasso": {"alpha": 0.01}, "catboost": {"learning_rate": 0.1, "depth": 4, "iterations": 40},
          "hist_gradient_boosting": {"learning_rate": 0.1, "max_leaf_nodes": 15, "min_samples_leaf": 5,
                                     "l2_regularization": 0.1, "max_features": 1.0, "max_iter": 100}}


def params_for(family) -> dict:
    """Known-good parameters, or the first point of the family's own space at 40 iterations."""
    if family.name in PARAMS:
        return PARAMS[family.name]
    trial = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0)).ask()
    return {**family.space(trial), **family.fixed_params(iterations=40)}


@pytest.fixture(params=family_names())
def family(request):
    return get_family(request.param)


def test_the_tutorial_families_and_the_third_are_registered():
    assert {"lasso", "catboost", "hist_gradient_boosting"} <= set(family_names())
    with pytest.raises(KeyError, match="unknown model family 'nope'"):
        get_family("nope")


def test_a_copy_of_a_family_module_under_another_name_is_one_more_family(tmp_path, monkeypatch):
    """Adding a family is one new file: discovery finds it, nothing else is edited."""
    source = (families.__path__[0] + "/hist_gradient_boosting.py")
    text = open(source).read()
    assert text.count('name = "hist_gradient_boosting"') == 1
    copy = tmp_path / "copied_boosting.py"
    copy.write_text(text.replace('name = "hist_gradient_boosting"', 'name = "copied_boosting"'))
    monkeypatch.setattr(families, "__path__", [*families.__path__, str(tmp_path)])
    try:
        assert "copied_boosting" in family_names()
        assert get_family("copied_boosting").name == "copied_boosting"
    finally:
        families._REGISTRY.pop("copied_boosting", None)
        shutil.rmtree(tmp_path / "__pycache__", ignore_errors=True)


def test_two_families_with_one_name_are_refused():
    class Impostor(Family):
        name = "catboost"

    with pytest.raises(ValueError, match="two model families are called 'catboost'"):
        families.register(Impostor)


def test_build_is_unfitted_and_rebuildable_from_its_params(family, splits):
    model = family.build(params_for(family), splits, seed=1)
    if family.name == "catboost":
        # sklearn's clone() trips on CatBoost's list-valued cat_features; get_params() round-trips.
        rebuilt = type(model)(**model.get_params())
        assert rebuilt.get_params() == model.get_params()
    else:
        clone(model)
    with pytest.raises((NotFittedError, CatBoostError), match=r"not fitted|no trained model"):
        model.predict(splits.xy("val")[0])


def test_fit_predict_shapes_and_seed_determinism(family, splits):
    x_train, y_train = splits.xy("train")
    x_val, _ = splits.xy("val")
    first = family.build(params_for(family), splits, seed=1).fit(x_train, y_train).predict(x_val)
    second = family.build(params_for(family), splits, seed=1).fit(x_train, y_train).predict(x_val)
    assert first.shape == (len(x_val),)
    np.testing.assert_array_equal(first, second)


def test_categorical_columns_carry_signal(family, splits):
    """The frame's categorical 'colour' shifts y by ±4: a family that handles it beats a constant."""
    x_train, y_train = splits.xy("train")
    x_val, y_val = splits.xy("val")
    model = family.build(params_for(family), splits, seed=1).fit(x_train, y_train)
    rmse = float(np.sqrt(np.mean((model.predict(x_val) - y_val) ** 2)))
    assert rmse < 0.5 * float(np.std(y_val))


def test_space_suggests_only_tunable_parameters(family):
    trial = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0)).ask()
    suggested = family.space(trial)
    assert suggested and set(suggested) == set(trial.params)
    assert not set(suggested) & set(family.fixed_params(iterations=10))


def test_explain_names_features(family, splits):
    model = family.build(params_for(family), splits, seed=1).fit(*splits.xy("train"))
    explained = family.explain(model, splits)
    if type(family).explain is Family.explain:
        assert explained is None  # the default: nothing to show
    else:
        assert len(explained) >= len(splits.numeric) and explained.name


def test_refit_plan_hist_gradient_boosting_iterations_from_early_stopping(splits):
    family = get_family("hist_gradient_boosting")
    tuned = params_for(family)
    plan = family.refit_plan(tuned, splits, 1, max_iterations=300, early_stopping_rounds=10)
    params = plan.params
    assert 1 <= params["max_iter"] <= 300
    assert plan.kept == "tuned" and set(plan.val_rmse) == {"tuned"}
    assert {k: v for k, v in params.items() if k != "max_iter"} == {k: v for k, v in tuned.items() if k != "max_iter"}


def test_hist_gradient_boosting_refit_over_folds_keeps_its_fold_models_and_out_of_fold_predictions(splits):
    """With folds, the third family is weighed as CatBoost is: each fold stopped on its held-out
    rows and judged as it stopped; the plan keeps the fold models (what final=bag serves), the
    rows they left out predicted by them (a candidate a blend can weigh), and sizes a refit on
    all rows by the folds' mean best iteration."""
    from steps.lib.model.blending import Bag
    from steps.lib.model.training import refit_and_test

    family = get_family("hist_gradient_boosting")
    tuned = params_for(family)
    plan = family.refit_plan(tuned, splits, 1, max_iterations=300, early_stopping_rounds=10, folds=3)
    folds = splits.cv_folds(3)
    assert set(plan.out_of_fold) == {"tuned"} and plan.out_of_fold["tuned"][0] == tuned
    predictions = plan.out_of_fold["tuned"][1]
    assert len(plan.fold_models) == 3 and not np.isnan(predictions).any()
    per_fold = []
    for model, fold in zip(plan.fold_models, folds, strict=True):
        x_val, y_val = fold.xy("val")
        assert model.predict(x_val) == pytest.approx(predictions[fold.val.index])  # scored as it stopped
        per_fold.append(np.sqrt(np.mean((predictions[fold.val.index] - y_val.to_numpy()) ** 2)))
        assert model[-1].n_iter_ < 300  # it stopped: 10 iterations past its best
    assert plan.val_rmse == {"tuned": pytest.approx(np.mean(per_fold))}
    best = [model[-1].n_iter_ - 10 for model in plan.fold_models]
    assert plan.params == {**tuned, "max_iter": round(sum(best) / 3)}
    budget = {"max_iterations": 300, "early_stopping_rounds": 10, "folds": 3}
    bagged = refit_and_test(family, tuned, splits, 1, final="bag", **budget)
    assert isinstance(bagged.model, Bag) and bagged.params["bag_folds"] == 3
    refit = refit_and_test(family, tuned, splits, 1, final="refit", **budget)
    assert refit.model[-1].n_iter_ == plan.params["max_iter"]
    holdout = family.refit_plan(tuned, splits, 1, max_iterations=300, early_stopping_rounds=10)
    assert holdout.out_of_fold == {} and holdout.fold_models == ()


def test_hist_gradient_boosting_predicts_missing_values_and_unseen_levels(splits):
    family = get_family("hist_gradient_boosting")
    model = family.build(params_for(family), splits, seed=1).fit(*splits.xy("train"))
    rows = unconform(splits.xy("val")[0].head(3), splits.categorical)
    rows.loc[rows.index[0], "x1"] = np.nan
    rows.loc[rows.index[1], "colour"] = "a colour never seen"
    assert np.isfinite(model.predict(conform(rows, splits.numeric, splits.categorical))).all()


def _openmp_threads() -> set[int]:
    from threadpoolctl import threadpool_info

    return {pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "openmp"}


def test_hist_gradient_boosting_fits_and_predicts_on_its_thread_count_only(splits, monkeypatch):
    """OpenMP takes no thread count per estimator: without the family's limit every tuning fit,
    refit probe and prediction would start one thread per core, whatever n_jobs shares them."""
    from sklearn.ensemble import HistGradientBoostingRegressor

    from steps.lib.model.training import fit_and_score, refit_and_test

    family = get_family("hist_gradient_boosting", thread_count=1)
    if _openmp_threads() == {1}:  # the import above loaded scikit-learn's OpenMP runtime
        pytest.skip("OpenMP uses one thread here anyway (one core, or OMP_NUM_THREADS=1)")
    seen = []
    for method in ("fit", "predict"):
        original = getattr(HistGradientBoostingRegressor, method)

        def recording(self, *args, original=original, method=method, **kwargs):
            seen.append((method, _openmp_threads()))
            return original(self, *args, **kwargs)
        monkeypatch.setattr(HistGradientBoostingRegressor, method, recording)
    fit_and_score(family, params_for(family), splits, 1)
    refit_and_test(family, params_for(family), splits, 1, max_iterations=30, early_stopping_rounds=10)
    assert {method for method, _ in seen} == {"fit", "predict"}
    assert all(threads == {1} for _, threads in seen), seen
    assert _openmp_threads() != {1}, "the limit must end with the fit, not stay on the process"


def _early_stopped_val(splits, where_stopped=False, **params) -> tuple[float, int, float]:
    """A plain CatBoost fit early-stopped on val: (its best val RMSE, or, `where_stopped`, its
    val RMSE as the fit ended; its best tree count; the learning rate it ran at)."""
    from catboost import CatBoostRegressor

    model = CatBoostRegressor(iterations=300, loss_function="RMSE", random_seed=1,
                              cat_features=list(splits.categorical), thread_count=get_family("catboost").thread_count,
                              allow_writing_files=False, verbose=False, **params)
    model.fit(*splits.xy("train"), eval_set=splits.xy("val"), early_stopping_rounds=10,
              use_best_model=not where_stopped)  # which also moves CatBoost's automatic learning rate
    history = model.get_evals_result()["validation"]["RMSE"]
    val_rmse = history[-1] if where_stopped else model.get_best_score()["validation"]["RMSE"]
    return val_rmse, model.get_best_iteration() + 1, model.get_all_params()["learning_rate"]


def test_catboost_refit_keeps_what_early_stops_lower_on_val_tuned_or_catboost_defaults(splits):
    """Refit early-stops the tuned parameters and CatBoost's own defaults alike and keeps the
    lower val RMSE, so the model is never worse on val than CatBoost untuned; both ways occur."""
    family = get_family("catboost")
    untuned_val, untuned_trees, auto_rate = _early_stopped_val(splits)
    kept = set()
    for tuned in (PARAMS["catboost"], {"learning_rate": 0.001, "depth": 2, "iterations": 40}):
        plan = family.refit_plan(tuned, splits, 1, max_iterations=300, early_stopping_rounds=10)
        tuned_val, tuned_trees, _ = _early_stopped_val(splits, **{k: v for k, v in tuned.items() if k != "iterations"})
        assert plan.val_rmse == pytest.approx({"tuned": tuned_val, "defaults": untuned_val})  # what refit logs
        if tuned_val <= untuned_val:
            assert plan.params == {**tuned, "iterations": tuned_trees}
            assert plan.kept == "tuned"
        else:  # nothing but the tree count and CatBoost's automatic rate for 300 trees, pinned
            assert plan.params == {"loss_function": "RMSE", "learning_rate": pytest.approx(auto_rate),
                                   "iterations": untuned_trees}
            assert plan.kept == "defaults"
            # try_defaults=False (refit's switch): the tuned parameters all the same
            alone = get_family("catboost", try_defaults=False).refit_plan(
                tuned, splits, 1, max_iterations=300, early_stopping_rounds=10)
            assert (alone.params, alone.kept) == ({**tuned, "iterations": tuned_trees}, "tuned")
            assert alone.val_rmse == pytest.approx({"tuned": tuned_val})
        kept.add(plan.kept)
    assert kept == {"tuned", "defaults"}
    assert get_family("lasso").refit_plan({"alpha": 0.5}, splits, 1, max_iterations=1,
                                          early_stopping_rounds=1) == RefitPlan({"alpha": 0.5})


def test_catboost_tuned_on_a_sample_weighs_its_candidates_there_and_fits_the_kept_one_on_all_rows(splits):
    """Tuned on a sample of train (`tune_rows`), refit early-stops the tuned parameters and
    CatBoost's defaults on that same sample, where the tuning scored them, and only the one it
    keeps on every training row (its tree count, and the defaults' automatic rate, at that size)."""
    family = get_family("catboost")
    rows = len(splits.train) // 2
    sample = splits.with_train_sample(rows, splits.seed)
    untuned_val, _, _ = _early_stopped_val(sample)
    _, untuned_trees, auto_rate = _early_stopped_val(splits)
    kept = set()
    for tuned in (PARAMS["catboost"], {"learning_rate": 0.001, "depth": 2, "iterations": 40}):
        plan = family.refit_plan(tuned, splits, 1, max_iterations=300, early_stopping_rounds=10, judge_rows=rows)
        untimed = {k: v for k, v in tuned.items() if k != "iterations"}
        tuned_val, _, _ = _early_stopped_val(sample, **untimed)
        assert plan.val_rmse == pytest.approx({"tuned": tuned_val, "defaults": untuned_val})
        assert plan.val_rmse != pytest.approx(family.refit_plan(tuned, splits, 1, max_iterations=300,
                                                                early_stopping_rounds=10).val_rmse)
        if tuned_val <= untuned_val:
            _, tuned_trees, _ = _early_stopped_val(splits, **untimed)
            assert (plan.kept, plan.params) == ("tuned", {**tuned, "iterations": tuned_trees})
        else:
            assert plan.kept == "defaults"
            assert plan.params == {"loss_function": "RMSE", "learning_rate": pytest.approx(auto_rate),
                                   "iterations": untuned_trees}
        kept.add(plan.kept)
    assert kept == {"tuned", "defaults"}
    assert family.refit_plan(PARAMS["catboost"], splits, 1, max_iterations=300, early_stopping_rounds=10,
                             judge_rows=len(splits.train)) == family.refit_plan(
        PARAMS["catboost"], splits, 1, max_iterations=300, early_stopping_rounds=10)  # all of train: as before


def test_refit_plan_says_on_request_what_each_candidate_predicts_of_val(family, splits):
    """Asked for (a blend chosen on val), each candidate the plan weighed comes with its final
    parameters and its predictions of val: those of the model its val RMSE was measured on (the
    early-stopped one, for a family that stops early), or of its parameters fitted on train.
    Not asked for, or over folds (out-of-fold predictions instead), none."""
    import numpy as np

    tuned = params_for(family)
    plan = family.refit_plan(tuned, splits, 1, max_iterations=300, early_stopping_rounds=10, val_predictions=True)
    assert set(plan.held_out) == set(plan.val_rmse) | {"tuned"}
    x_val, y_val = splits.xy("val")
    tree_count = set(family.fixed_params(iterations=1))
    for name, (final, predicted) in plan.held_out.items():
        assert len(predicted) == len(y_val)
        if name == plan.kept:
            assert final == plan.params
        if name == "tuned":  # the given point, at whatever tree count the plan chose for it
            assert {k: final.get(k) for k in tuned if k not in tree_count} == {
                k: v for k, v in tuned.items() if k not in tree_count}
        if name in plan.val_rmse:  # the early-stopped model's, where the family stops early
            assert float(np.sqrt(np.mean((np.asarray(predicted) - y_val.to_numpy()) ** 2))) == pytest.approx(
                plan.val_rmse[name])
        else:
            refitted = family.build(final, splits, 1).fit(*splits.xy("train"))
            assert np.asarray(predicted) == pytest.approx(np.asarray(refitted.predict(x_val)))
    assert family.refit_plan(tuned, splits, 1, max_iterations=300, early_stopping_rounds=10).held_out == {}
    assert family.refit_plan(tuned, splits, 1, max_iterations=300, early_stopping_rounds=10, folds=3,
                             val_predictions=True).held_out == {}


def test_catboost_refuses_implicit_learning_rate(splits):
    with pytest.raises(ValueError, match="learning_rate"):
        get_family("catboost").build({"depth": 3}, splits, seed=0)


def test_pip_requirements_are_pinned(family):
    requirements = family.pip_requirements()
    assert all("==" in r for r in requirements) and any(r.startswith("mlflow==") for r in requirements)


def test_catboost_refit_over_folds_judges_and_sizes_both_candidates_by_their_fold_means(splits):
    """With folds, tuned and defaults are each early-stopped on every fold of train+val: the
    plan logs the mean fold RMSE of each, as each fold's fit ended (its best tree count, chosen
    on those very rows, would flatter it), keeps the lower, and grows the mean best tree count."""
    family = get_family("catboost")
    tuned = PARAMS["catboost"]
    folds = splits.cv_folds(3)
    per_fold = {"tuned": [_early_stopped_val(fold, where_stopped=True,
                                             **{k: v for k, v in tuned.items() if k != "iterations"})
                          for fold in folds],
                "defaults": [_early_stopped_val(fold, where_stopped=True) for fold in folds]}
    means = {name: sum(f[0] for f in fits) / 3 for name, fits in per_fold.items()}
    plan = family.refit_plan(tuned, splits, 1, max_iterations=300, early_stopping_rounds=10, folds=3)
    assert plan.val_rmse == pytest.approx(means)
    assert plan.kept == min(means, key=means.get)
    trees = round(sum(f[1] for f in per_fold[plan.kept]) / 3)
    assert plan.params["iterations"] == trees
    holdout = family.refit_plan(tuned, splits, 1, max_iterations=300, early_stopping_rounds=10)
    assert holdout.val_rmse != plan.val_rmse  # one split's verdict is not the folds'


def test_catboost_bag_is_the_kept_candidates_fold_models_averaged_without_a_refit(splits):
    """final=bag: the final model is the kept candidate's k early-stopped fold models, each
    weighed 1/k, scored on test as served; final=refit grows one model with their mean tree
    count on train+val instead. LASSO keeps no fold models, so it refits either way."""
    from steps.lib.model.blending import Bag, flattened
    from steps.lib.model.training import refit_and_test

    family, tuned = get_family("catboost"), PARAMS["catboost"]
    budget = {"max_iterations": 300, "early_stopping_rounds": 10, "folds": 3}
    bagged = refit_and_test(family, tuned, splits, 1, final="bag", **budget)
    refit = refit_and_test(family, tuned, splits, 1, final="refit", **budget)
    assert isinstance(bagged.model, Bag) and len(bagged.model.models) == 3 and bagged.params["bag_folds"] == 3
    kept = refit.refit.kept
    trees = [_early_stopped_val(fold, where_stopped=True, **({} if kept == "defaults" else
                                         {k: v for k, v in tuned.items() if k != "iterations"}))[1]
             for fold in splits.cv_folds(3)]
    # each ends where its own fold stopped it: 10 trees past its best, at most 300
    assert [m.tree_count_ for m in bagged.model.models] == [min(t + 10, 300) for t in trees]
    x_test, y_test = splits.xy("test")
    mean = np.mean([m.predict(x_test) for m in bagged.model.models], axis=0)
    assert bagged.metrics["test_rmse"] == pytest.approx(float(np.sqrt(np.mean((mean - y_test.to_numpy()) ** 2))))
    assert [w for _, _, w in flattened([(family, bagged.model, 0.5)])] == pytest.approx([0.5 / 3] * 3)
    assert refit.model.tree_count_ == refit.params["iterations"] == max(1, round(sum(trees) / 3))
    assert bagged.metrics["test_rmse"] != refit.metrics["test_rmse"]
    lasso = refit_and_test(get_family("lasso"), {"alpha": 0.01}, splits, 1, final="bag", **budget)
    assert not isinstance(lasso.model, Bag) and "bag_folds" not in lasso.params


def test_a_blend_member_is_refit_as_its_own_candidate_never_swapped_for_catboost_defaults(splits):
    """alternatives=False (how refit refits a blend's members): CatBoost keeps the tuned
    parameters it was given, weighing nothing else, since the blend's weight was earned by that
    candidate's out-of-fold predictions; the single final model still weighs its defaults."""
    family = get_family("catboost", try_defaults=True)
    weak = {"learning_rate": 0.001, "depth": 1, "iterations": 40}  # barely learns in 300 trees: the defaults win
    free = family.refit_plan(weak, splits, 1, max_iterations=300, early_stopping_rounds=10, folds=3)
    member = family.refit_plan(weak, splits, 1, max_iterations=300, early_stopping_rounds=10, folds=3,
                               alternatives=False)
    assert free.kept == "defaults" and set(free.val_rmse) == {"tuned", "defaults"}
    assert member.kept == "tuned" and set(member.val_rmse) == {"tuned"}
    assert member.params["depth"] == 1 and member.val_rmse["tuned"] == pytest.approx(free.val_rmse["tuned"])


def test_catboost_refit_over_folds_keeps_each_candidates_out_of_fold_predictions(splits):
    """Each candidate refit weighed over folds (tuned, CatBoost's defaults) comes with its
    parameters and its out-of-fold predictions: every train+val row predicted by the fold model
    that left it out, scoring each fold exactly as early stopping judged it."""
    family = get_family("catboost")
    plan = family.refit_plan(PARAMS["catboost"], splits, 1, max_iterations=300, early_stopping_rounds=10, folds=3)
    assert set(plan.out_of_fold) == {"tuned", "defaults"}
    defaults = plan.out_of_fold["defaults"][0]  # CatBoost untuned, its automatic rate pinned
    assert set(defaults) == {"loss_function", "learning_rate"} and 0 < defaults["learning_rate"] < 1
    assert "iterations" not in plan.out_of_fold["tuned"][0]
    folds = splits.cv_folds(3)
    _, target = splits.train_val()
    for name, (_, predictions) in plan.out_of_fold.items():
        assert len(predictions) == len(target) and not np.isnan(predictions).any()
        per_fold = [np.sqrt(np.mean((predictions[f.val.index] - target.to_numpy()[f.val.index]) ** 2)) for f in folds]
        assert np.mean(per_fold) == pytest.approx(plan.val_rmse[name])
    holdout = family.refit_plan(PARAMS["catboost"], splits, 1, max_iterations=300, early_stopping_rounds=10)
    assert holdout.out_of_fold == {}  # one split: nothing out of fold


def test_a_long_catboost_refit_fit_says_where_it_is_at_a_steady_rhythm(splits, monkeypatch, capsys):
    """Each early-stopped fit of refit prints, every progress.EVERY_S, the candidate and fold, the
    trees so far and the best val RMSE so far; the model is the same with or without the lines."""
    from steps.lib import progress

    family = get_family("catboost")
    params = {"depth": 4, "learning_rate": 0.1}
    monkeypatch.setenv(progress.MODE_ENV, "lines")
    monkeypatch.setattr(progress, "EVERY_S", 1e9)
    quiet = family.refit_plan(params, splits, 0, max_iterations=40, early_stopping_rounds=5, folds=2)
    assert "refit: catboost" not in capsys.readouterr().out
    monkeypatch.setattr(progress, "EVERY_S", 0.0)  # every tree
    loud = family.refit_plan(params, splits, 0, max_iterations=40, early_stopping_rounds=5, folds=2)
    lines = capsys.readouterr().out.splitlines()
    assert loud == quiet
    assert any(line.startswith("refit: catboost tuned fold 1/2: 1 trees, best val RMSE ") for line in lines)
    assert any(line.startswith("refit: catboost defaults fold 2/2: ") for line in lines)


def test_on_a_terminal_a_catboost_refit_fit_draws_one_bar_that_ends_where_the_fit_stopped(splits, monkeypatch,
                                                                                          capsys):
    """With a bar (a terminal) the fit's progress is one redrawn line: its label, trees of the
    most it may grow and the best val RMSE, ending at the trees the fit ran; no plain lines."""
    from steps.lib import progress

    family = get_family("catboost")
    monkeypatch.setenv(progress.MODE_ENV, "bar")
    monkeypatch.setattr(progress, "SHOW_AFTER_S", 0.0)
    family.refit_plan({"depth": 4, "learning_rate": 0.1}, splits, 0, max_iterations=40, early_stopping_rounds=5,
                      alternatives=False)
    out = capsys.readouterr().out
    final = out.split("\r")[-1].strip().splitlines()[0]
    assert final.startswith("refit: catboost tuned: ") and " of at most 40 trees [" in final, out
    assert "best val RMSE " in final, out
    ran = int(final.removeprefix("refit: catboost tuned: ").split(" ")[0])
    assert 5 < ran <= 40  # early stopped after at least its 5 patience rounds
    assert "refit: catboost tuned: 1 trees" not in out  # no plain line beside the bar
