"""Would running tune_lasso and tune_catboost at the same time pay? (issue 12: both depend only
on prepare.) One prepare run, then the two tuning steps one after the other and then side by
side, each as its own `mlflow run -e <step>` against the same store, as `main` would start them.

    python bench/overlap.py [--trials 50] [--iterations 500] [--repeats 3]

Prints JSON: per repeat the sequential wall (sum of the two steps) and the side-by-side wall (the
later of the two to end), and the medians. Steps started on their own never reuse earlier runs
(reuse is `main`'s), so both layouts do the same work."""

from __future__ import annotations

import argparse
import statistics
import threading
import time

from _common import emit, temp_store, timed_mlflow_run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--iterations", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    uri = temp_store()
    _, data_run_id = timed_mlflow_run(uri, "prepare", {})
    steps = {
        "tune_lasso": {"data_run_id": data_run_id},
        "tune_catboost": {"data_run_id": data_run_id, "trials": args.trials, "iterations": args.iterations},
    }
    sequential, side_by_side, per_step = [], [], []
    for _ in range(args.repeats):
        walls = {step: timed_mlflow_run(uri, step, params)[0] for step, params in steps.items()}
        per_step.append({step: round(seconds, 2) for step, seconds in walls.items()})
        sequential.append(sum(walls.values()))
        started = time.perf_counter()
        threads = [threading.Thread(target=timed_mlflow_run, args=(uri, step, params))
                   for step, params in steps.items()]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        side_by_side.append(time.perf_counter() - started)
    emit("overlap", {
        "trials": args.trials, "iterations": args.iterations,
        "sequential_s": [round(s, 2) for s in sequential], "side_by_side_s": [round(s, 2) for s in side_by_side],
        "per_step_s": per_step,
        "median_sequential_s": round(statistics.median(sequential), 2),
        "median_side_by_side_s": round(statistics.median(side_by_side), 2),
        "saving": round(1 - statistics.median(side_by_side) / statistics.median(sequential), 3),
    })


if __name__ == "__main__":
    main()
