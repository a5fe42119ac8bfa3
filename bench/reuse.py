"""What a rerun costs once `main` reuses steps (issue: reruns that cost nothing).

    python bench/reuse.py [--trials 50]

Prints JSON: wall seconds of a first `mlflow run . --env-manager local` on a fresh store, of
the same command again (every step reused), and of a rerun with another early_stopping_rounds
(refit and package run again), each as a ratio of the first."""

from __future__ import annotations

import argparse

from _common import emit, temp_store, timed_mlflow_run


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=50)
    args = parser.parse_args()
    uri = temp_store()
    first, _ = timed_mlflow_run(uri, "main", {"trials": args.trials})
    rerun, _ = timed_mlflow_run(uri, "main", {"trials": args.trials})
    changed, _ = timed_mlflow_run(uri, "main", {"trials": args.trials, "early_stopping_rounds": 50})
    emit("reuse", {
        "trials": args.trials,
        "first_run_s": round(first, 1),
        "full_rerun_s": round(rerun, 1),
        "rerun_after_early_stopping_change_s": round(changed, 1),
        "full_rerun_over_first": round(rerun / first, 3),
        "early_stopping_change_over_first": round(changed / first, 3),
    })


if __name__ == "__main__":
    main()
