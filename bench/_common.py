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

PROJECT_DIR = Path(__file__).resolve().parents[1]


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
    args = [sys.executable, "-m", "mlflow", "run", str(PROJECT_DIR), "-e", entry_point, "--env-manager", "local"]
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
