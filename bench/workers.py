"""Trials per minute with 1 and with 2 worker processes (CatBoost thread_count=1 each) on one
PostgreSQL-backed Optuna study, tracking on a loopback `mlflow server`; both started here.

    python bench/workers.py [--trials 40] [--iterations 500]

Prints JSON: for 1 and 2 workers, wall seconds from the first trial's start to the last
trial's end, trials per minute, and the study's best val RMSE."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

import optuna

from _common import PROJECT_DIR, emit, timed_mlflow_run


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--iterations", type=int, default=500)
    args = parser.parse_args()
    sys.path.insert(0, str(PROJECT_DIR))
    from tests.servers import mlflow_server, postgres

    figures = {}
    with postgres() as pg, mlflow_server(pg["url"]("mlflow")) as uri:
        _, data_run_id = timed_mlflow_run(uri, "prepare", {})
        env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "TABTUNE_BENCH_STORAGE": pg["url"]("optuna"),
               "PATH": f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ['PATH']}"}
        for workers in (1, 2):
            study_name = f"bench-{workers}-workers"
            command = [sys.executable, "-m", "mlflow", "run", str(PROJECT_DIR), "-e", "tune_catboost",
                       "--env-manager", "local", "-P", f"data_run_id={data_run_id}",
                       "-P", f"trials={args.trials}",
                       "-P", f"iterations={args.iterations}", "-P", "storage=env:TABTUNE_BENCH_STORAGE",
                       "-P", f"study_name={study_name}", "-P", "thread_count=1"]
            processes = [subprocess.Popen([*command, "-P", f"seed={seed}"], env=env, cwd=PROJECT_DIR,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                         for seed in range(workers)]
            if any(p.wait() for p in processes):
                sys.exit(f"a worker failed ({workers} workers)")
            study = optuna.load_study(study_name=study_name, storage=pg["url"]("optuna"))
            done = [t for t in study.trials
                    if t.datetime_complete and not t.user_attrs.get("tabtune.surplus")]
            span = (max(t.datetime_complete for t in done)
                    - min(t.datetime_start for t in done)).total_seconds()
            figures[f"{workers}_workers"] = {"trials": len(done), "span_s": round(span, 2),
                                             "trials_per_min": round(60 * len(done) / span, 1),
                                             "best_val_rmse": round(study.best_value, 4)}
    speedup = figures["2_workers"]["trials_per_min"] / figures["1_workers"]["trials_per_min"]
    emit("workers", {"iterations": args.iterations, "thread_count": 1, **figures,
                     "speedup": round(speedup, 2)})


if __name__ == "__main__":
    main()
