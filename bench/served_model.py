"""What a team serving the registered model pays for a bag or a blend: the model's size on disk
and its prediction latency, beside the single model today's default (validation=holdout) makes.

    python bench/served_model.py STORE_URI [STORE_URI ...] [--repeats 50] [--rows 1000] [--at-best-trees]

For every refit run in each store (e.g. the throwaway stores `bench/quality.py` leaves under
/tmp/tabtune-bench-*/mlflow.db, where one table x seed holds the default run and its
--variant runs), loads the logged model the way serving does (`mlflow.pyfunc.load_model` on
`tabtune.model_uri`) and measures, on the prepare run's test rows in their raw form:
- `size_mb`: the downloaded model directory (estimators, weights, the `steps` code, environment files);
- `members`: how many estimators it holds (1, k for a bag, more for a blend);
- `one_row_ms`: median over --repeats predictions of one row (a request of one);
- `per_row_us`: a --rows batch (the test rows repeated to that many) over its row count, median of 5.
Loading is not timed (a server loads once). Prints JSON; the rows are grouped by table as the
refit run's tags and parameters say (validation, final, family).

`--at-best-trees` adds, for each model, the same model with every CatBoost fold model cut back
to its best tree count (`shrink`), the blend weights unchanged: what shipping fold models at
their best iteration instead of where early stopping ended them would serve. A fold model
stops `early_stopping_rounds` trees past its best, so its best count is its tree count minus
those rounds (a model that reached `max_iterations` is left whole); `test_rmse` is then
computed here on the test rows, and `at_best_trees` is true on that row."""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from _common import emit


def _size_mb(directory: Path) -> float:
    return sum(f.stat().st_size for f in directory.rglob("*") if f.is_file()) / 1e6


def _timed(predict, rows, repeats: int) -> float:
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        predict(rows)
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def _cut_to_best_trees(directory: Path, rounds: int, max_trees: int) -> int:
    """Shrink, in place, every early-stopped CatBoost member of the model in `directory` to its
    best tree count; how many were cut."""
    from catboost import CatBoostRegressor

    cut = 0
    for path in sorted((directory / "artifacts").glob("estimator*/model.cb")):
        model = CatBoostRegressor()
        model.load_model(str(path))
        if model.tree_count_ < max_trees and model.tree_count_ > rounds:
            model.shrink(model.tree_count_ - rounds)
            model.save_model(str(path))
            cut += 1
    return cut


def _test_rmse(model, rows, truth) -> float:
    return float(np.sqrt(np.mean((np.asarray(model.predict(rows), dtype="float64").ravel() - truth) ** 2)))


def _figures(model, directory: Path, test, batch, repeats: int) -> dict:
    weights = directory / "artifacts" / "weights.json"
    return {"members": len(json.loads(weights.read_text())) if weights.exists() else 1,
            "size_mb": round(_size_mb(directory), 2),
            "one_row_ms": round(1000 * _timed(model.predict, test.head(1), repeats), 2),
            "per_row_us": round(1e6 * _timed(model.predict, batch, 5) / len(batch), 1)}


def measure(uri: str, repeats: int, batch_rows: int, at_best_trees: bool = False) -> list[dict]:
    import mlflow
    import pandas as pd
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    mlflow.set_tracking_uri(uri)
    out = []
    for experiment in client.search_experiments():
        for run in client.search_runs([experiment.experiment_id], "tags.`tabtune.step` = 'refit'"):
            if run.info.status != "FINISHED" or "tabtune.model_uri" not in run.data.tags:
                continue
            model_uri = run.data.tags["tabtune.model_uri"]
            directory = Path(mlflow.artifacts.download_artifacts(model_uri, dst_path=tempfile.mkdtemp()))
            model = mlflow.pyfunc.load_model(str(directory))
            data_run = run.data.tags["tabtune.data_run_id"]
            splits = Path(client.download_artifacts(data_run, "splits", tempfile.mkdtemp()))
            target = client.get_run(data_run).data.params.get("target", "")
            test = pd.read_parquet(splits / "test.parquet").drop(columns=[target], errors="ignore")
            example = json.loads((directory / "input_example.json").read_text()) if (
                directory / "input_example.json").exists() else None
            columns = example["columns"] if isinstance(example, dict) and "columns" in example else list(test.columns)
            test = test[[c for c in columns if c in test.columns]]
            for column in test.columns[test.dtypes == "category"]:  # raw rows: text, as a request sends them
                test[column] = test[column].astype(object).where(test[column].notna(), None)
            batch = pd.concat([test] * (batch_rows // len(test) + 1), ignore_index=True).head(batch_rows)
            row = {
                "refit_run_id": run.info.run_id,
                "data": Path(client.get_run(data_run).data.params.get("data", "")).name,
                "validation": run.data.tags.get("tabtune.validation", run.data.params.get("validation", "holdout")),
                "final": run.data.params.get("final", "refit"), "family": run.data.params.get("family"),
                "test_rmse": run.data.metrics.get("test_rmse"),
                **_figures(model, directory, test, batch, repeats),
            }
            out.append(row)
            print(json.dumps(out[-1]), flush=True)
            if not at_best_trees:
                continue
            truth = pd.read_parquet(splits / "test.parquet")[target].to_numpy(dtype="float64")
            as_logged = _test_rmse(model, test, truth)  # recomputed here: checks this script scores as refit did
            cut = _cut_to_best_trees(directory, int(float(run.data.params["early_stopping_rounds"])),
                                     int(float(run.data.params["max_iterations"])))
            model = mlflow.pyfunc.load_model(str(directory))
            out.append({**row, "at_best_trees": True, "members_cut": cut, "test_rmse": _test_rmse(model, test, truth),
                        "test_rmse_recomputed_as_logged": as_logged,
                        **_figures(model, directory, test, batch, repeats)})
            print(json.dumps(out[-1]), flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stores", nargs="+", help="tracking URIs, e.g. sqlite:////tmp/tabtune-bench-x/mlflow.db")
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--at-best-trees", action="store_true",
                        help="also each model with its CatBoost fold models cut to their best tree count")
    args = parser.parse_args()
    emit("served_model", {"runs": [row for uri in args.stores
                                   for row in measure(uri, args.repeats, args.rows, args.at_best_trees)]})


if __name__ == "__main__":
    main()
