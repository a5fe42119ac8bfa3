"""Does a trial cost more tracking time as the study grows? Per-trial time outside the fit
around trial 50 and around trial 500 of one tabtune tuning run (nothing per trial should grow
with the number of runs: no run searches, no re-reading the study beyond what TPE needs).

    python bench/trial_scaling.py [--trials 500] [--iterations 100] [--window 20]

Prints JSON: median per-trial overhead (ms) over the `window` trials ending at 50 and at the
last trial, and their ratio."""

from __future__ import annotations

import argparse
import statistics

from _common import emit, temp_store, timed_mlflow_run, tuning_figures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=500)
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--window", type=int, default=20)
    args = parser.parse_args()
    uri = temp_store()
    _, data_run_id = timed_mlflow_run(uri, "prepare", {})
    wall, tune_id = timed_mlflow_run(uri, "tune_catboost", {"data_run_id": data_run_id, "trials": args.trials,
                                                            "iterations": args.iterations})
    figures = tuning_figures(uri, tune_id)
    series = figures.pop("per_trial_overhead_ms_series")
    at_50 = statistics.median(series[50 - args.window:50])
    at_end = statistics.median(series[-args.window:])
    emit("trial_scaling", {"trials": args.trials, "iterations": args.iterations, "window": args.window,
                           "cli_wall_s": round(wall, 2), **figures,
                           "overhead_ms_at_50": at_50, f"overhead_ms_at_{args.trials}": at_end,
                           "ratio": round(at_end / at_50, 2)})


if __name__ == "__main__":
    main()
