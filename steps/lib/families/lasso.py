"""LASSO: a linear baseline behind the shared preprocessor; tuned over a grid of alphas."""

from __future__ import annotations

from importlib.metadata import version
from typing import Any

import pandas as pd
from sklearn.linear_model import Lasso
from sklearn.pipeline import Pipeline

from steps.lib.data import Splits
from steps.lib.features import build_preprocessor

MAX_ITER = 20_000


class LassoFamily:
    name = "lasso"
    flavor = "sklearn"

    def space(self, trial) -> dict[str, Any]:
        return {"alpha": trial.suggest_float("alpha", 1e-3, 1.0, log=True)}

    def fixed_params(self, *, iterations: int = MAX_ITER) -> dict[str, Any]:
        return {"max_iter": MAX_ITER}

    def build(self, params: dict[str, Any], splits: Splits, seed: int) -> Pipeline:
        regressor = Lasso(alpha=float(params["alpha"]), max_iter=MAX_ITER, random_state=seed)
        return Pipeline(
            [
                ("preprocess", build_preprocessor(splits.numeric, splits.categorical)),
                ("regressor", regressor),
            ]
        )

    def fit_options(self, splits, on_iteration) -> dict[str, Any]:
        return {}  # one coordinate-descent solve: nothing to prune

    def refit_params(self, params, splits, seed, *, max_iterations, early_stopping_rounds):
        return {"alpha": float(params["alpha"])}

    def explain(self, fitted: Pipeline, splits: Splits) -> pd.Series:
        names = fitted.named_steps["preprocess"].get_feature_names_out()
        return pd.Series(fitted.named_steps["regressor"].coef_, index=names, name="coefficient")

    def pip_requirements(self) -> list[str]:
        return [f"{p}=={version(p)}" for p in ("mlflow", "scikit-learn", "skops", "pandas", "numpy", "scipy")]
