"""Tracking overhead of tuning, tabtune vs the tutorial script, on sqlite and on a loopback
`mlflow server` backed by PostgreSQL (started here, stopped at the end).

    python bench/tuning_overhead.py [--trials 50] [--iterations 500] [--repeats 3] [--stores sqlite,server]

Prints JSON with medians over the repeats: tabtune's tuning step wall time / sum of fit times,
per-trial time outside the fit (tabtune and the tutorial script), per store."""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys

from _common import PROJECT_DIR, emit, run_json, temp_store, timed_mlflow_run, tuning_figures


@contextlib.contextmanager
def store(kind: str):
    if kind == "sqlite":
        yield temp_store()
        return
    sys.path.insert(0, str(PROJECT_DIR))
    from tests.servers import mlflow_server, postgres

    with postgres() as pg, mlflow_server(pg["url"]("mlflow")) as uri:
        yield uri


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--iterations", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--stores", default="sqlite,server")
    args = parser.parse_args()
    figures = {}
    for kind in args.stores.split(","):
        with store(kind) as uri:
            _, data_run_id = timed_mlflow_run(uri, "prepare", {})
            tabtune, naive = [], []
            for _ in range(args.repeats):
                wall, tune_id = timed_mlflow_run(uri, "tune_catboost", {
                    "data_run_id": data_run_id, "trials": args.trials, "iterations": args.iterations})
                tabtune.append({"cli_wall_s": round(wall, 2), **tuning_figures(uri, tune_id)})
                naive.append(run_json(["naive_tutorial.py", "--trials", str(args.trials), "--iterations",
                                       str(args.iterations), "--tracking-uri", uri]))
            figures[kind] = {
                "tabtune_step_over_fit_sum": statistics.median(r["step_over_fit_sum"] for r in tabtune),
                "tabtune_step_s": statistics.median(r["step_s"] for r in tabtune),
                "tabtune_fit_sum_s": statistics.median(r["fit_sum_s"] for r in tabtune),
                "tabtune_per_trial_outside_fit_ms": statistics.median(
                    r["per_trial_outside_fit_ms"] for r in tabtune),
                "tutorial_per_trial_outside_fit_ms": statistics.median(
                    r["per_trial_outside_fit_ms"] for r in naive),
                "tutorial_loop_over_fit_sum": statistics.median(
                    r["tuning_loop_s"] / r["fit_sum_s"] for r in naive),
                "runs": {"tabtune": [{k: v for k, v in r.items() if k != "per_trial_overhead_ms_series"}
                                     for r in tabtune], "tutorial": naive},
            }
    emit("tuning_overhead", {"trials": args.trials, "iterations": args.iterations, "repeats": args.repeats,
                             **figures})


if __name__ == "__main__":
    main()
