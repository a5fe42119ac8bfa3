"""LASSO: a linear baseline behind the shared preprocessor (impute, scale, one-hot); tuned over
a grid of alphas by tune_lasso, or by Optuna through the generic tuning step."""

from __future__ import annotations

from typing import Any

import pandas as pd

from steps.lib.data.tables import Splits
from steps.lib.families import register
from steps.lib.families.base import Family

MAX_ITER = 20_000


@register
class LassoFamily(Family):
    name = "lasso"

    def space(self, trial) -> dict[str, Any]:
        return {"alpha": trial.suggest_float("alpha", 1e-3, 1.0, log=True)}

    def fixed_params(self, *, iterations: int = MAX_ITER) -> dict[str, Any]:
        return {"max_iter": MAX_ITER}

    def build(self, params: dict[str, Any], splits: Splits, seed: int):
        """Standardised features and a standardised target, so alpha means the same on every
        table whatever the target's unit: alpha ≥ 1 zeroes every coefficient, 0.001 is almost
        unregularised. Predictions are scaled back inside the model."""
        from sklearn.compose import TransformedTargetRegressor
        from sklearn.linear_model import Lasso
        from sklearn.pipeline import Pipeline
        from sklearn.preprocessing import StandardScaler

        from steps.lib.data.features import build_preprocessor

        regressor = Lasso(alpha=float(params["alpha"]), max_iter=MAX_ITER, random_state=seed)
        pipeline = Pipeline(
            [
                ("preprocess", build_preprocessor(splits.numeric, splits.categorical, rows=len(splits.train))),
                ("regressor", regressor),
            ]
        )
        return TransformedTargetRegressor(regressor=pipeline, transformer=StandardScaler(), check_inverse=False)

    def refit_plan(self, params, splits, seed, *, max_iterations, early_stopping_rounds, folds=0,
                   alternatives=True, val_predictions=False, judge_rows=0):
        return super().refit_plan({"alpha": float(params["alpha"])}, splits, seed, max_iterations=max_iterations,
                                  early_stopping_rounds=early_stopping_rounds, folds=folds,
                                  val_predictions=val_predictions)

    def explain(self, fitted, splits: Splits) -> pd.Series:
        """Coefficients in target units per standard deviation of each (encoded) feature."""
        pipeline = fitted.regressor_
        names = pipeline.named_steps["preprocess"].get_feature_names_out()
        scale = float(fitted.transformer_.scale_[0])
        return pd.Series(pipeline.named_steps["regressor"].coef_ * scale, index=names, name="coefficient")
