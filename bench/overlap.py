"""What running the tuning steps side by side saves (tune_lasso and tune_catboost depend
only on prepare): the whole `main` pipeline with `parallel_steps=1` (one step at a time, as
before) against `parallel_steps=2` (the default), alternating, each on a fresh sqlite store.

    python bench/overlap.py [--trials 50] [--iterations 500] [--repeats 3]

Prints JSON: per layout the pipeline walls, the tuning phase (first tuning step's start to the
last one's end, from the step runs) and the medians, and the saving. The two layouts alternate
within each repeat, so a machine that gets slower or faster meanwhile affects both alike."""

from __future__ import annotations

import argparse
import statistics

from mlflow.tracking import MlflowClient

from _common import emit, temp_store, timed_mlflow_run

LAYOUTS = {"one_at_a_time": 1, "side_by_side": 2}


def tuning_phase_s(uri: str, pipeline_run_id: str) -> float:
    """Seconds from the first tuning step's start to the last one's end, as their runs record."""
    client = MlflowClient(uri)
    tags = client.get_run(pipeline_run_id).data.tags
    runs = [client.get_run(run_id).info for key, run_id in tags.items() if key.startswith("tabtune.run_id.tune")]
    return (max(run.end_time for run in runs) - min(run.start_time for run in runs)) / 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--iterations", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    walls: dict[str, list[float]] = {layout: [] for layout in LAYOUTS}
    tuning: dict[str, list[float]] = {layout: [] for layout in LAYOUTS}
    rmse: dict[str, set[float]] = {layout: set() for layout in LAYOUTS}
    for _ in range(args.repeats):
        for layout, parallel_steps in LAYOUTS.items():
            uri = temp_store()
            wall, run_id = timed_mlflow_run(uri, "main", {"trials": args.trials, "iterations": args.iterations,
                                                         "parallel_steps": parallel_steps})
            walls[layout].append(round(wall, 2))
            tuning[layout].append(round(tuning_phase_s(uri, run_id), 2))
            rmse[layout].add(round(MlflowClient(uri).get_run(run_id).data.metrics["test_rmse"], 4))
    median = {layout: statistics.median(values) for layout, values in walls.items()}
    median_tuning = {layout: statistics.median(values) for layout, values in tuning.items()}
    emit("overlap", {
        "trials": args.trials, "iterations": args.iterations,
        "pipeline_wall_s": walls, "tuning_phase_s": tuning,
        "median_pipeline_wall_s": median, "median_tuning_phase_s": median_tuning,
        "pipeline_saving": round(1 - median["side_by_side"] / median["one_at_a_time"], 3),
        "tuning_phase_saving": round(1 - median_tuning["side_by_side"] / median_tuning["one_at_a_time"], 3),
        "test_rmse": {layout: sorted(values) for layout, values in rmse.items()},  # the same model either way
    })


if __name__ == "__main__":
    main()
