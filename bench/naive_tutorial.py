"""The baseline: the tutorial's method as one script, written the way tutorials write it.

Nested `mlflow.start_run()` per alpha and per trial, one tracking call per param and metric,
Optuna TPE over CatBoost at a fixed tree count, early stopping for the tree count, a refit on
train+val, the model logged once with inferred requirements and registered.

    python bench/naive_tutorial.py [--trials 50] [--iterations 500] [--tracking-uri URI]
                                   [--log-model-per-trial]

Prints JSON: wall seconds, sum of CatBoost fit seconds in the tuning loop, the tuning loop's
seconds, and the per-trial time outside the fit."""

from __future__ import annotations

import argparse
import time

WALL_START = time.perf_counter()

import mlflow  # noqa: E402
import numpy as np  # noqa: E402
import optuna  # noqa: E402
from catboost import CatBoostRegressor  # noqa: E402
from sklearn.datasets import load_diabetes  # noqa: E402
from sklearn.linear_model import Lasso  # noqa: E402
from sklearn.metrics import mean_squared_error  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from _common import emit, temp_store  # noqa: E402


def rmse(y, p):
    return float(np.sqrt(mean_squared_error(y, p)))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--iterations", type=int, default=500)
    parser.add_argument("--tracking-uri", default="")
    parser.add_argument("--log-model-per-trial", action="store_true")
    args = parser.parse_args()
    mlflow.set_tracking_uri(args.tracking_uri or temp_store())
    mlflow.set_experiment("naive-tutorial")
    np.random.seed(42)
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    X_tmp, X_test, y_tmp, y_test = train_test_split(X, y, test_size=0.2, random_state=42)
    X_train, X_val, y_train, y_val = train_test_split(X_tmp, y_tmp, test_size=0.25, random_state=42)
    scaler = StandardScaler().fit(X_train)
    fit_seconds = []

    with mlflow.start_run(run_name="tutorial") as parent:
        for alpha in [1, 0.3, 0.1, 0.03, 0.01, 0.003, 0.001]:
            with mlflow.start_run(run_name=f"lasso-{alpha}", nested=True):
                model = Lasso(alpha=alpha).fit(scaler.transform(X_train), y_train)
                mlflow.log_param("alpha", alpha)
                mlflow.log_metric("val_rmse", rmse(y_val, model.predict(scaler.transform(X_val))))

        def objective(trial):
            params = {
                "depth": trial.suggest_int("depth", 3, 8),
                "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.3, log=True),
                "l2_leaf_reg": trial.suggest_float("l2_leaf_reg", 1.0, 30.0, log=True),
                "bagging_temperature": trial.suggest_float("bagging_temperature", 0.0, 1.0),
                "random_strength": trial.suggest_float("random_strength", 1e-3, 10.0, log=True),
            }
            with mlflow.start_run(run_name=f"trial-{trial.number}", nested=True):
                model = CatBoostRegressor(iterations=args.iterations, random_seed=42, verbose=False,
                                          allow_writing_files=False, **params)
                started = time.perf_counter()
                model.fit(X_train, y_train)
                fit_seconds.append(time.perf_counter() - started)
                score = rmse(y_val, model.predict(X_val))
                for key, value in params.items():
                    mlflow.log_param(key, value)
                mlflow.log_param("iterations", args.iterations)
                mlflow.log_metric("val_rmse", score)
                if args.log_model_per_trial:
                    mlflow.catboost.log_model(model, name="model")
            return score

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = optuna.create_study(direction="minimize", sampler=optuna.samplers.TPESampler(seed=42))
        loop_started = time.perf_counter()
        study.optimize(objective, n_trials=args.trials)
        loop_s = time.perf_counter() - loop_started

        probe = CatBoostRegressor(iterations=5000, random_seed=42, verbose=False, allow_writing_files=False,
                                  **study.best_params)
        probe.fit(X_train, y_train, eval_set=(X_val, y_val), early_stopping_rounds=100)
        final = CatBoostRegressor(iterations=probe.get_best_iteration() + 1, random_seed=42, verbose=False,
                                  allow_writing_files=False, **study.best_params)
        final.fit(np.vstack([X_train, X_val]), np.concatenate([y_train, y_val]))
        mlflow.log_metric("test_rmse", rmse(y_test, final.predict(X_test)))
        mlflow.set_tag("best_model", "true")
        info = mlflow.catboost.log_model(final, name="model", input_example=X_test.head(5))
        mlflow.register_model(info.model_uri, "naive-tutorial")
        mlflow.log_artifact(__file__)
    emit("naive_tutorial", {
        "trials": args.trials, "iterations": args.iterations, "run_id": parent.info.run_id,
        "wall_s": round(time.perf_counter() - WALL_START, 2),
        "tuning_loop_s": round(loop_s, 2), "fit_sum_s": round(sum(fit_seconds), 2),
        "per_trial_outside_fit_ms": round(1000 * (loop_s - sum(fit_seconds)) / args.trials, 1),
        "log_model_per_trial": args.log_model_per_trial,
    })


if __name__ == "__main__":
    main()
