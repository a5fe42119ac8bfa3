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


def sampler_only_ms(trials: int, window: int) -> tuple[float, float]:
    """Optuna's own per-trial cost (TPE ask + tell, in memory, an instant objective) near trial
    50 and near the last trial: the part of the overhead that grows by design."""
    import time

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0))
    costs = []
    for _ in range(trials):
        started = time.perf_counter()
        trial = study.ask()
        value = sum([trial.suggest_int("depth", 3, 8),
                     trial.suggest_float("learning_rate", 0.01, 0.3, log=True),
                     trial.suggest_float("l2_leaf_reg", 1.0, 30.0, log=True),
                     trial.suggest_float("bagging_temperature", 0.0, 1.0),
                     trial.suggest_float("random_strength", 1e-3, 10.0, log=True)])
        study.tell(trial, value)
        costs.append(1000 * (time.perf_counter() - started))
    return statistics.median(costs[50 - window:50]), statistics.median(costs[-window:])


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
    tpe_50, tpe_end = sampler_only_ms(args.trials, args.window)
    emit("trial_scaling", {"trials": args.trials, "iterations": args.iterations, "window": args.window,
                           "cli_wall_s": round(wall, 2), **figures,
                           "optuna_tpe_only_ms_at_50": round(tpe_50, 1),
                           f"optuna_tpe_only_ms_at_{args.trials}": round(tpe_end, 1),
                           "overhead_ms_at_50": at_50, f"overhead_ms_at_{args.trials}": at_end,
                           "ratio": round(at_end / at_50, 2)})


if __name__ == "__main__":
    main()
