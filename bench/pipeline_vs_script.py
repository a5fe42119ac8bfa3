"""The whole pipeline (`mlflow run . --env-manager local`, six processes) against the tutorial's
single script doing the same work, on the sqlite store.

    python bench/pipeline_vs_script.py [--trials 50] [--iterations 500] [--repeats 3] [--pruner none]

Prints JSON: median wall seconds of each and their ratio, and the pipeline's per-step seconds."""

from __future__ import annotations

import argparse
import statistics

from mlflow.tracking import MlflowClient

from _common import emit, run_json, temp_store, timed_mlflow_run


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--iterations", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--pruner", default="none")
    args = parser.parse_args()
    pipeline, script, steps = [], [], []
    for _ in range(args.repeats):
        uri = temp_store()
        wall, pipeline_id = timed_mlflow_run(
            uri, "main", {"trials": args.trials, "iterations": args.iterations, "pruner": args.pruner})
        pipeline.append(wall)
        client = MlflowClient(uri)
        tags = client.get_run(pipeline_id).data.tags
        step_s = {}
        for key, run_id in tags.items():
            if key.startswith("tabtune.run_id."):
                info = client.get_run(run_id).info
                seconds = (info.end_time - info.start_time) / 1000
                step_s[key.removeprefix("tabtune.run_id.")] = round(seconds, 2)
        steps.append(step_s)
        script.append(run_json(["naive_tutorial.py", "--trials", str(args.trials), "--iterations",
                                str(args.iterations)])["wall_s"])
    emit("pipeline_vs_script", {
        "trials": args.trials, "iterations": args.iterations, "pruner": args.pruner,
        "pipeline_wall_s": statistics.median(pipeline), "script_wall_s": statistics.median(script),
        "ratio": round(statistics.median(pipeline) / statistics.median(script), 2),
        "pipeline_runs_s": [round(w, 2) for w in pipeline], "script_runs_s": script, "step_run_s": steps,
    })


if __name__ == "__main__":
    main()
