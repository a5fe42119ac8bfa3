"""Figures for the step runs: each takes plain data and returns a matplotlib figure."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # steps run headless

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd


def rmse_by_alpha(alphas, rmses, best_alpha: float):
    """Validation RMSE against alpha (log scale), best alpha marked."""
    figure, axes = plt.subplots(figsize=(6, 4))
    axes.plot(alphas, rmses, marker="o")
    axes.axvline(best_alpha, color="tab:red", linestyle="--", label=f"best alpha = {best_alpha:g}")
    axes.set(xscale="log", xlabel="alpha", ylabel="val RMSE", title="LASSO: val RMSE by alpha")
    axes.legend()
    figure.tight_layout()
    return figure


def predicted_vs_actual(actual, predicted, title: str):
    figure, axes = plt.subplots(figsize=(5, 5))
    axes.scatter(actual, predicted, s=12, alpha=0.6)
    low = float(min(np.min(actual), np.min(predicted)))
    high = float(max(np.max(actual), np.max(predicted)))
    axes.plot([low, high], [low, high], color="gray", linestyle="--")
    axes.set(xlabel="actual", ylabel="predicted", title=title)
    figure.tight_layout()
    return figure


def residuals(actual, predicted, title: str):
    figure, axes = plt.subplots(figsize=(6, 4))
    axes.scatter(predicted, np.asarray(actual) - np.asarray(predicted), s=12, alpha=0.6)
    axes.axhline(0.0, color="gray", linestyle="--")
    axes.set(xlabel="predicted", ylabel="actual - predicted", title=title)
    figure.tight_layout()
    return figure


def feature_bars(values: pd.Series, title: str, top: int = 25):
    """Largest absolute importances or coefficients as horizontal bars."""
    shown = values.reindex(values.abs().sort_values(ascending=False).index[:top])[::-1]
    figure, axes = plt.subplots(figsize=(6, max(3, 0.3 * len(shown) + 1)))
    axes.barh([str(i) for i in shown.index], shown.to_numpy())
    axes.set(title=title, xlabel=values.name or "value")
    figure.tight_layout()
    return figure


def optuna_figures(study) -> dict[str, object]:
    """Optuna's own matplotlib plots that the study has enough trials for, by file name."""
    import warnings
    from functools import partial

    from optuna.importance import PedAnovaImportanceEvaluator
    from optuna.visualization import matplotlib as optuna_plots

    makers = {
        "optimization_history.png": optuna_plots.plot_optimization_history,
        # PED-ANOVA instead of the default fANOVA: same question, a fraction of the time (fANOVA
        # fits a random forest and was a third of the tuning step's fixed cost on small data).
        "param_importances.png": partial(optuna_plots.plot_param_importances,
                                         evaluator=PedAnovaImportanceEvaluator()),
        "parallel_coordinate.png": optuna_plots.plot_parallel_coordinate,
    }
    figures = {}
    for file_name, make in makers.items():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the matplotlib backend is "experimental"
                axes = make(study)
        except (ValueError, RuntimeError, ZeroDivisionError):
            continue  # too few complete trials for this plot
        axes = np.ravel(axes)[0] if isinstance(axes, np.ndarray) else axes
        figure = axes.get_figure()
        figure.set_size_inches(8, 5)
        figure.tight_layout()
        figures[file_name] = figure
    return figures
