"""The tuning steps side by side or one at a time, with the third family in the pipeline.

    pip install -r bench/requirements.txt        # the tables come from bench/quality.py
    python bench/side_by_side.py [--table cps1988] [--trials 20]

Runs the real pipeline (`mlflow run . -e main --env-manager local -P families=lasso,catboost,
hist_gradient_boosting`) on one quality table, seed 1, once with `parallel_steps=2` (the
default: the tuning steps run side by side, each given every core) and once with
`parallel_steps=1`, each on its own throwaway store, and prints the pipeline's wall seconds and
each tuning step run's duration. Wall seconds are of this machine at the time."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from _common import PROJECT_DIR, emit, temp_store, timed_mlflow_run

sys.path.insert(0, str(PROJECT_DIR))


def main() -> None:
    from mlflow.tracking import MlflowClient
    from quality import TABLES, write_table

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", default="cps1988", choices=list(TABLES))
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--families", default="lasso,catboost,hist_gradient_boosting")
    args = parser.parse_args()
    path, _ = write_table(args.table, Path(tempfile.mkdtemp(prefix="tabtune-side-")))
    runs = []
    for parallel_steps in (2, 1):
        uri = temp_store()
        seconds, main_id = timed_mlflow_run(uri, "main", {
            "data": path, "target": TABLES[args.table]["target"], "seed": 1, "trials": args.trials,
            "families": args.families, "parallel_steps": parallel_steps, "registered_model_name": "side"})
        client = MlflowClient(uri)
        steps = {key.removeprefix("tabtune.run_id."): run_id for key, run_id in
                 client.get_run(main_id).data.tags.items() if key.startswith("tabtune.run_id.tune")}
        durations = {step: round((info.end_time - info.start_time) / 1000, 1) for step, info in
                     ((step, client.get_run(run_id).info) for step, run_id in steps.items())}
        runs.append({"parallel_steps": parallel_steps, "pipeline_s": round(seconds, 1), "tuning_step_s": durations})
        print(f"side_by_side: {runs[-1]}", file=sys.stderr, flush=True)
    emit("side_by_side", {"command": " ".join(["python", "bench/side_by_side.py", *sys.argv[1:]]),
                          "table": args.table, "trials": args.trials, "families": args.families, "runs": runs})


if __name__ == "__main__":
    main()
