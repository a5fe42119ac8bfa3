"""The step runs' figures (steps/lib/model/plots.py): what each one draws, read back from the figure."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import optuna
import pandas as pd
import pytest

from steps.lib.model import plots


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_rmse_by_alpha_draws_the_curve_on_a_log_axis_and_marks_the_best_alpha():
    figure = plots.rmse_by_alpha([1, 0.1, 0.01], [3.0, 2.0, 2.5], best_alpha=0.1)
    (axes,) = figure.axes
    curve, best = axes.get_lines()
    assert (axes.get_xscale(), axes.get_xlabel(), axes.get_ylabel()) == ("log", "alpha", "val RMSE")
    assert list(curve.get_xdata()) == [1, 0.1, 0.01] and list(curve.get_ydata()) == [3.0, 2.0, 2.5]
    assert list(best.get_xdata()) == [0.1, 0.1]  # a vertical line at the best alpha
    assert [text.get_text() for text in axes.get_legend().get_texts()] == ["best alpha = 0.1"]


def test_predicted_vs_actual_puts_each_row_at_actual_predicted_beside_the_diagonal():
    figure = plots.predicted_vs_actual([1.0, 2.0, 3.0], [1.5, 2.5, 0.5], "refit")
    (axes,) = figure.axes
    assert axes.collections[0].get_offsets().tolist() == [[1.0, 1.5], [2.0, 2.5], [3.0, 0.5]]
    (diagonal,) = axes.get_lines()
    assert list(diagonal.get_xdata()) == list(diagonal.get_ydata()) == [0.5, 3.0]  # lowest to highest value
    assert (axes.get_xlabel(), axes.get_ylabel(), axes.get_title()) == ("actual", "predicted", "refit")


def test_residuals_are_actual_minus_predicted_against_predicted():
    figure = plots.residuals(np.array([1.0, 2.0, 3.0]), np.array([1.5, 2.5, 2.0]), "refit")
    (axes,) = figure.axes
    assert axes.collections[0].get_offsets().tolist() == [[1.5, -0.5], [2.5, -0.5], [2.0, 1.0]]
    assert (axes.get_xlabel(), axes.get_ylabel()) == ("predicted", "actual - predicted")


def test_feature_bars_show_the_largest_absolute_values_the_largest_on_top():
    values = pd.Series({"a": 0.5, "b": -3.0, "c": 1.0, "d": 0.1}, name="coefficient")
    figure = plots.feature_bars(values, "coefficients", top=3)
    (axes,) = figure.axes
    assert [bar.get_width() for bar in axes.patches] == [0.5, 1.0, -3.0]  # bottom to top
    assert [label.get_text() for label in axes.get_yticklabels()] == ["a", "c", "b"]
    assert (axes.get_xlabel(), axes.get_title()) == ("coefficient", "coefficients")


def test_feature_bars_of_an_unnamed_series_say_value():
    figure = plots.feature_bars(pd.Series({"a": 1.0, "b": 2.0}), "importances")
    assert figure.axes[0].get_xlabel() == "value"


@pytest.fixture
def study():
    """Five trials of a study over two parameters."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(lambda trial: trial.suggest_float("x", 0, 1) + trial.suggest_int("y", 1, 5), n_trials=5)
    return study


def test_optuna_figures_are_the_three_plots_at_one_size(study):
    figures = plots.optuna_figures(study)
    assert sorted(figures) == ["optimization_history.png", "parallel_coordinate.png", "param_importances.png"]
    assert {name: tuple(figure.get_size_inches()) for name, figure in figures.items()} == dict.fromkeys(
        figures, (8.0, 5.0))


def test_the_optimization_history_shows_every_trial_s_value(study):
    axes = plots.optuna_figures(study)["optimization_history.png"].axes[0]
    assert axes.collections[0].get_offsets().tolist() == [[t.number, t.value] for t in study.trials]


def test_the_parameter_importances_have_one_bar_per_parameter(study):
    axes = plots.optuna_figures(study)["param_importances.png"].axes[0]
    assert sorted(label.get_text() for label in axes.get_yticklabels()) == ["x", "y"]
    assert len(axes.patches) == 2
