"""The small interface every model family implements; adding a family is one new file."""

from __future__ import annotations

from typing import Any, Protocol

import pandas as pd

from steps.lib.data import Splits


class Family(Protocol):
    """A model family: how to search it, build it, refit it and explain it."""

    name: str
    flavor: str  # the mlflow module that logs it: "sklearn", "catboost", …

    def space(self, trial) -> dict[str, Any]:
        """Parameters suggested for one Optuna trial, and nothing else."""

    def fixed_params(self, *, iterations: int) -> dict[str, Any]:
        """Parameters held constant while tuning (logged on every child run)."""

    def build(self, params: dict[str, Any], splits: Splits, seed: int):
        """An unfitted scikit-learn-compatible regressor that brings its own preprocessing."""

    def fit_options(self, splits: Splits, on_iteration) -> dict[str, Any]:
        """Extra `fit` arguments that call `on_iteration(iteration, val_rmse) -> go_on` while
        fitting, for pruning; {} for a family that does not fit iteratively."""

    def refit_params(
        self,
        params: dict[str, Any],
        splits: Splits,
        seed: int,
        *,
        max_iterations: int,
        early_stopping_rounds: int,
    ) -> dict[str, Any]:
        """Parameters for the final train+val fit (e.g. a tree count chosen by early stopping)."""

    def explain(self, fitted, splits: Splits) -> pd.Series:
        """Feature importances or coefficients of a fitted model, indexed by feature."""

    def pip_requirements(self) -> list[str]:
        """Exactly what serving the model needs, so logging skips requirement inference."""
