"""Wall time of the whole pipeline and of the tuning step, and where a trial's time goes.

    python bench/pipeline.py [--trials 50] [--iterations 500]

Prints JSON: pipeline wall seconds (`mlflow run . --env-manager local`), the tuning step's own
wall seconds (step run start to end, as MLflow records it), the sum of CatBoost `fit` seconds
inside it, and the per-trial time outside `fit` within the trial loop."""

from __future__ import annotations

import argparse

from mlflow.tracking import MlflowClient

from _common import emit, temp_store, timed_mlflow_run


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--iterations", type=int, default=500)
    args = parser.parse_args()
    uri = temp_store()
    wall, pipeline_id = timed_mlflow_run(uri, "main", {"trials": args.trials, "iterations": args.iterations})
    client = MlflowClient(uri)
    pipeline = client.get_run(pipeline_id)
    tune_id = pipeline.data.tags["tabtune.run_id.tune_catboost"]
    tune = client.get_run(tune_id)
    experiment = tune.info.experiment_id
    trials = client.search_runs([experiment], f"tags.`mlflow.parentRunId` = '{tune_id}'", max_results=10000)
    fit_s = sum(r.data.metrics["fit_s"] for r in trials)
    loop_s = (max(r.info.end_time for r in trials) - min(r.info.start_time for r in trials)) / 1000
    steps = {}
    for key, run_id in pipeline.data.tags.items():
        if key.startswith("tabtune.run_id."):
            run = client.get_run(run_id)
            seconds = (run.info.end_time - run.info.start_time) / 1000
            steps[key.removeprefix("tabtune.run_id.")] = round(seconds, 2)
    emit("pipeline", {
        "trials": args.trials,
        "iterations": args.iterations,
        "pipeline_wall_s": round(wall, 2),
        "step_run_s": steps,
        "tune_catboost_step_s": steps["tune_catboost"],
        "tune_catboost_fit_sum_s": round(fit_s, 2),
        "trial_loop_s": round(loop_s, 2),
        "per_trial_outside_fit_ms": round(1000 * (loop_s - fit_s) / len(trials), 1),
        "tune_step_over_fit_sum": round(steps["tune_catboost"] / fit_s, 3),
        "test_rmse": pipeline.data.metrics["test_rmse"],
    })


if __name__ == "__main__":
    main()
