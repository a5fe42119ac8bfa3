"""The contract every model family meets; a new family is covered by adding its name."""

import numpy as np
import optuna
import pytest
from catboost import CatBoostError
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from steps.lib.families import FAMILY_NAMES, get_family

PARAMS = {"lasso": {"alpha": 0.01}, "catboost": {"learning_rate": 0.1, "depth": 4, "iterations": 40}}


@pytest.fixture(params=FAMILY_NAMES)
def family(request):
    return get_family(request.param)


def test_build_is_unfitted_and_rebuildable_from_its_params(family, splits):
    model = family.build(PARAMS[family.name], splits, seed=1)
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
    first = family.build(PARAMS[family.name], splits, seed=1).fit(x_train, y_train).predict(x_val)
    second = family.build(PARAMS[family.name], splits, seed=1).fit(x_train, y_train).predict(x_val)
    assert first.shape == (len(x_val),)
    np.testing.assert_array_equal(first, second)


def test_categorical_columns_carry_signal(family, splits):
    """The frame's categorical 'colour' shifts y by ±4: a family that handles it beats a constant."""
    x_train, y_train = splits.xy("train")
    x_val, y_val = splits.xy("val")
    model = family.build(PARAMS[family.name], splits, seed=1).fit(x_train, y_train)
    rmse = float(np.sqrt(np.mean((model.predict(x_val) - y_val) ** 2)))
    assert rmse < 0.5 * float(np.std(y_val))


def test_space_suggests_only_tunable_parameters(family):
    trial = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0)).ask()
    suggested = family.space(trial)
    assert suggested and set(suggested) == set(trial.params)
    assert not set(suggested) & set(family.fixed_params(iterations=10))


def test_explain_names_features(family, splits):
    model = family.build(PARAMS[family.name], splits, seed=1).fit(*splits.xy("train"))
    explained = family.explain(model, splits)
    assert len(explained) >= len(splits.numeric) and explained.name


def test_refit_params_catboost_tree_count_from_early_stopping(splits):
    family = get_family("catboost")
    params = family.refit_params(PARAMS["catboost"], splits, 1, max_iterations=300, early_stopping_rounds=10)
    assert 1 <= params["iterations"] <= 300 and params["learning_rate"] == 0.1
    assert get_family("lasso").refit_params({"alpha": 0.5}, splits, 1, max_iterations=1,
                                            early_stopping_rounds=1) == {"alpha": 0.5}


def test_catboost_refuses_implicit_learning_rate(splits):
    with pytest.raises(ValueError, match="learning_rate"):
        get_family("catboost").build({"depth": 3}, splits, seed=0)


def test_pip_requirements_are_pinned(family):
    requirements = family.pip_requirements()
    assert all("==" in r for r in requirements) and any(r.startswith("mlflow==") for r in requirements)
