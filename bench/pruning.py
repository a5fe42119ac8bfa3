"""Pruning's trade: wall time of the tuning step and the best val RMSE it reaches, per pruner.

    python bench/pruning.py [--trials 50] [--iterations 500] [--pruners none,median,hyperband]

Prints JSON per pruner: tuning step seconds, sum of fit seconds, trials pruned, best val RMSE."""

from __future__ import annotations

import argparse

from mlflow.tracking import MlflowClient

from _common import emit, temp_store, timed_mlflow_run, tuning_figures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--iterations", type=int, default=500)
    parser.add_argument("--pruners", default="none,median,hyperband")
    args = parser.parse_args()
    uri = temp_store()
    _, data_run_id = timed_mlflow_run(uri, "prepare", {})
    figures = {}
    for pruner in args.pruners.split(","):
        wall, tune_id = timed_mlflow_run(uri, "tune_catboost", {
            "data_run_id": data_run_id, "trials": args.trials, "iterations": args.iterations,
            "pruner": pruner})
        metrics = MlflowClient(uri).get_run(tune_id).data.metrics
        detail = tuning_figures(uri, tune_id)
        figures[pruner] = {"cli_wall_s": round(wall, 2), "step_s": detail["step_s"],
                           "trial_loop_s": detail["trial_loop_s"], "fit_sum_s": detail["fit_sum_s"],
                           "trials_pruned": metrics.get("trials_pruned", 0),
                           "best_val_rmse": round(metrics["best_val_rmse"], 4)}
    emit("pruning", {"trials": args.trials, "iterations": args.iterations, **figures})


if __name__ == "__main__":
    main()
