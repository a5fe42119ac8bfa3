"""What every benchmark shares: the machine description, a throwaway store, and timed `mlflow run`."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parents[1]  # bench runs from its folder, before steps is importable


def machine() -> dict:
    from importlib.metadata import version

    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "mlflow": version("mlflow"),
        "optuna": version("optuna"),
        "catboost": version("catboost"),
    }


def temp_store() -> str:
    return f"sqlite:///{Path(tempfile.mkdtemp(prefix='tabtune-bench-')) / 'mlflow.db'}"


def timed_mlflow_run(tracking_uri: str, entry_point: str, params: dict) -> tuple[float, str]:
    """Wall seconds of `mlflow run . -e <entry_point> --env-manager local`, and the run ID it made."""
    args = [sys.executable, "-m", "mlflow", "run", str(PROJECT_DIR), "-e", entry_point,
            "--env-manager", "local"]
    for key, value in params.items():
        args += ["-P", f"{key}={value}"]
    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking_uri, "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    started = time.perf_counter()
    result = subprocess.run(args, cwd=PROJECT_DIR, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"mlflow run failed:\n{result.stderr[-4000:]}")
    run_id = result.stderr.split("Run (ID '")[-1].split("'")[0]
    return seconds, run_id


def emit(name: str, figures: dict) -> None:
    print(json.dumps({"benchmark": name, "machine": machine(), **figures}, indent=2))


def run_json(args: list[str]) -> dict:
    """Run another bench script and parse the JSON it prints."""
    result = subprocess.run([sys.executable, *args], cwd=PROJECT_DIR / "bench", capture_output=True,
                            text=True, env={**os.environ, "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"})
    if result.returncode != 0:
        sys.exit(f"{args} failed:\n{result.stderr[-4000:]}")
    return json.loads(result.stdout[result.stdout.index("{"):])


def tuning_figures(tracking_uri: str, tune_run_id: str) -> dict:
    """Where a tabtune tuning run's time went, from its trials table and child runs."""
    import io

    import pandas as pd
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri)
    run = client.get_run(tune_run_id)
    table = pd.read_csv(io.StringIO(_load_text(client, tune_run_id)))
    started = pd.to_datetime(table["datetime_start"])
    completed = pd.to_datetime(table["datetime_complete"])
    children = client.search_runs([run.info.experiment_id], f"tags.`mlflow.parentRunId` = '{tune_run_id}'",
                                  max_results=50000)
    fits = {int(r.data.tags["tabtune.trial_number"]): r.data.metrics.get("fit_s", 0.0) for r in children
            if "tabtune.trial_number" in r.data.tags}
    loop_s = (completed.max() - started.min()).total_seconds()
    fit_sum = sum(fits.values())
    step_s = (run.info.end_time - run.info.start_time) / 1000
    order = completed.sort_values().index
    per_trial = (completed[order].diff().dt.total_seconds() - table.loc[order, "number"].map(fits)).dropna()
    return {
        "step_s": round(step_s, 2), "trial_loop_s": round(loop_s, 2), "fit_sum_s": round(fit_sum, 2),
        "step_over_fit_sum": round(step_s / fit_sum, 3) if fit_sum else None,
        "per_trial_outside_fit_ms": round(1000 * (loop_s - fit_sum) / len(table), 1),
        "per_trial_overhead_ms_series": [round(1000 * v, 1) for v in per_trial.to_list()],
        "child_runs": len(fits),
    }


def _load_text(client, run_id: str) -> str:
    path = client.download_artifacts(run_id, "trials.csv", tempfile.mkdtemp())
    return Path(path).read_text()
