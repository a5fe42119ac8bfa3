"""scikit-learn's HistGradientBoostingRegressor: boosted trees with native missing values and
native categorical splits, no extra dependency. Tuned by Optuna at a fixed number of boosting
iterations (cross-validated: each fold stopped early on its held-out rows); refit with the
count chosen by early stopping on val, or, where the final model is cross-validated, weighed
over the folds and served as those fold models (a bag), as CatBoost is."""

from __future__ import annotations

import math
from typing import Any, ClassVar

from steps.lib.data.tables import Splits
from steps.lib.families import register
from steps.lib.families.base import Family, FitData, RefitPlan

MAX_CATEGORIES = 254  # native categorical splits take at most max_bins (255) levels, one kept for unknowns


@register
class HistGradientBoostingFamily(Family):
    name = "hist_gradient_boosting"
    # scikit-learn's defaults, written out so blend.json and the leaderboard say what was fitted
    untuned_params: ClassVar[dict[str, Any]] = {"learning_rate": 0.1, "max_leaf_nodes": 31, "min_samples_leaf": 20,
                                                 "l2_regularization": 0.0}

    def space(self, trial) -> dict[str, Any]:
        return {
            "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.3, log=True),
            "max_leaf_nodes": trial.suggest_int("max_leaf_nodes", 8, 64, log=True),
            "min_samples_leaf": trial.suggest_int("min_samples_leaf", 5, 100, log=True),
            "l2_regularization": trial.suggest_float("l2_regularization", 1e-3, 10.0, log=True),
            "max_features": trial.suggest_float("max_features", 0.5, 1.0),
        }

    def threads(self):
        """scikit-learn's histogram boosting runs on OpenMP, which takes no thread count per
        estimator and otherwise starts one thread per core in every fit: two trials in threads
        (`n_jobs`), or a step beside it, then oversubscribe the cores, and OpenMP's busy-waiting
        threads make each fit many times slower (BENCHMARKS.md, threads)."""
        from threadpoolctl import threadpool_limits

        return threadpool_limits(limits=self.thread_count, user_api="openmp")

    def fixed_params(self, *, iterations: int) -> dict[str, Any]:
        # Its own early stopping would carve a validation set out of train: off, the count is fixed.
        return {"max_iter": iterations}

    def fit_early_stopped(self, model, data: FitData, rounds: int) -> tuple[Any, int]:
        """scikit-learn's own early stopping, on the held-out rows given instead of rows carved
        out of train: without it each fold fitted the whole budget, and the study took about 4x
        CatBoost's (BENCHMARKS.md). The fold is scored as the fit ends, `rounds` iterations past
        its best: scoring the best iteration, chosen on the very rows it is scored on, made its
        out-of-fold predictions look better than they are, and blends that trusted them were
        worse on test (10 of 12 runs, BENCHMARKS.md)."""
        encode, regressor = model[:-1], model[-1]
        encoded_train, encoded_val = encode.fit_transform(data.train_x), encode.transform(data.val_x)
        regressor.set_params(early_stopping=True, n_iter_no_change=rounds)
        regressor.fit(encoded_train, data.train_y, X_val=encoded_val, y_val=data.val_y)
        return regressor.predict(encoded_val), int(regressor.n_iter_)

    def build(self, params: dict[str, Any], splits: Splits, seed: int):
        import numpy as np
        from sklearn.compose import ColumnTransformer
        from sklearn.ensemble import HistGradientBoostingRegressor
        from sklearn.pipeline import Pipeline
        from sklearn.preprocessing import OrdinalEncoder

        encoder = ColumnTransformer(
            [("categorical", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=np.nan,
                                            max_categories=MAX_CATEGORIES), list(splits.categorical))],
            remainder="passthrough", verbose_feature_names_out=False,
        ).set_output(transform="pandas")
        regressor = HistGradientBoostingRegressor(
            **params, early_stopping=False, categorical_features=list(splits.categorical) or None,
            random_state=seed,
        )
        return Pipeline([("encode", encoder), ("regressor", regressor)])

    def refit_plan(self, params, splits, seed, *, max_iterations, early_stopping_rounds, folds=0,
                   alternatives=True, val_predictions=False, judge_rows=0):
        """Boosting iterations chosen on val: grow the model `early_stopping_rounds` at a time
        until val RMSE has not improved for that many iterations. With `folds`, each fold of
        train+val is stopped on its held-out rows instead, as a cross-validated trial is, and
        judged as it stopped: the plan keeps those fold models (what `final=bag` serves) and
        their out-of-fold predictions (a candidate a blend can weigh, also where the tuning ran
        on the holdout), and a refit on all rows grows the folds' mean best iteration count."""
        if folds:
            return self._refit_plan_over_folds(params, splits, seed, max_iterations, early_stopping_rounds, folds)
        import numpy as np

        model = self.build({**params, "max_iter": 1}, splits, seed)
        model.set_params(regressor__warm_start=True)
        x_train, y_train = splits.xy("train")
        x_val, y_val = splits.xy("val")
        best_count, best_rmse, best_predicted, grown = 1, math.inf, None, 0
        while grown < max_iterations and grown - best_count < early_stopping_rounds:
            grown = min(grown + early_stopping_rounds, max_iterations)
            model.set_params(regressor__max_iter=grown).fit(x_train, y_train)
            encoded_val = model[:-1].transform(x_val)
            for count, predicted in enumerate(model[-1].staged_predict(encoded_val), start=1):
                rmse = float(np.sqrt(np.mean((predicted - y_val.to_numpy()) ** 2)))
                if rmse < best_rmse:
                    best_count, best_rmse, best_predicted = count, rmse, predicted
        final = {**params, "max_iter": best_count}
        return RefitPlan(final, val_rmse={"tuned": best_rmse},
                         held_out={"tuned": (final, best_predicted)} if val_predictions else {})

    def _refit_plan_over_folds(self, params, splits, seed, max_iterations, early_stopping_rounds, folds):
        import numpy as np

        models, best, rmse = [], [], []
        out_of_fold = np.full(len(splits.train) + len(splits.val), np.nan)
        for fold in splits.cv_folds(folds):
            models.append(self.build({**params, "max_iter": max_iterations}, fold, seed))
            data = self.fit_data(fold)
            predicted, _ = self.fit_early_stopped(models[-1], data, early_stopping_rounds)
            out_of_fold[fold.val.index.to_numpy()] = predicted
            rmse.append(float(np.sqrt(np.mean((predicted - data.val_y.to_numpy()) ** 2))))
            # validation_score_[i]: the held-out score after i iterations (higher is better)
            best.append(max(1, int(np.argmax(models[-1][-1].validation_score_))))
        final = {**params, "max_iter": max(1, round(sum(best) / len(best)))}
        return RefitPlan(final, val_rmse={"tuned": sum(rmse) / len(rmse)},
                         out_of_fold={"tuned": (dict(params), out_of_fold)}, bags={"tuned": (final, tuple(models))})
