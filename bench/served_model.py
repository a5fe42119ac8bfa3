"""What a team serving the registered model pays for a bag or a blend: the model's size on disk
and its prediction latency, beside the single model today's default (validation=holdout) makes.

    python bench/served_model.py STORE_URI [STORE_URI ...] [--repeats 50] [--rows 1000]

For every refit run in each store (e.g. the throwaway stores `bench/quality.py` leaves under
/tmp/tabtune-bench-*/mlflow.db, where one table x seed holds the default run and its
--variant runs), loads the logged model the way serving does (`mlflow.pyfunc.load_model` on
`tabtune.model_uri`) and measures, on the prepare run's test rows in their raw form:
- `size_mb`: the downloaded model directory (estimators, weights, the `steps` code, environment files);
- `members`: how many estimators it holds (1, k for a bag, more for a blend);
- `one_row_ms`: median over --repeats predictions of one row (a request of one);
- `per_row_us`: a --rows batch (the test rows repeated to that many) over its row count, median of 5.
Loading is not timed (a server loads once). Prints JSON; the rows are grouped by table as the
refit run's tags and parameters say (validation, final, family)."""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

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


def measure(uri: str, repeats: int, batch_rows: int) -> list[dict]:
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
            weights = directory / "artifacts" / "weights.json"
            out.append({
                "refit_run_id": run.info.run_id,
                "data": Path(client.get_run(data_run).data.params.get("data", "")).name,
                "validation": run.data.tags.get("tabtune.validation", run.data.params.get("validation", "holdout")),
                "final": run.data.params.get("final", "refit"), "family": run.data.params.get("family"),
                "members": len(json.loads(weights.read_text())) if weights.exists() else 1,
                "test_rmse": run.data.metrics.get("test_rmse"),
                "size_mb": round(_size_mb(directory), 2),
                "one_row_ms": round(1000 * _timed(model.predict, test.head(1), repeats), 2),
                "per_row_us": round(1e6 * _timed(model.predict, batch, 5) / len(batch), 1),
            })
            print(json.dumps(out[-1]), flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stores", nargs="+", help="tracking URIs, e.g. sqlite:////tmp/tabtune-bench-x/mlflow.db")
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--rows", type=int, default=1000)
    args = parser.parse_args()
    emit("served_model", {"runs": [row for uri in args.stores for row in measure(uri, args.repeats, args.rows)]})


if __name__ == "__main__":
    main()
