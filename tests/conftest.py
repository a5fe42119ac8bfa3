"""Shared fixtures: small frames for the library tests, and a real `mlflow run` for the end-to-end ones."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from steps.lib.names import PROJECT_DIR

# A pipeline's budget in the end-to-end tests. max_iterations: refit early-stops CatBoost's own
# defaults on every fold at the automatic learning rate for that many trees; at the default 5000
# that was ~1,500 trees a fold, 10 s of every test pipeline's refit on a 120-row table.
TINY = {"trials": "3", "iterations": "30", "alphas": "1,0.1,0.01", "max_iterations": "300"}


def make_frame(n_rows: int = 120, seed: int = 0, categorical: bool = True) -> pd.DataFrame:
    """A small regression table with a signal in both numeric and categorical columns."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"x1": rng.normal(size=n_rows), "x2": rng.uniform(-1, 1, size=n_rows)})
    y = 3 * frame["x1"] - 2 * frame["x2"] + rng.normal(scale=0.3, size=n_rows)
    if categorical:
        frame["colour"] = rng.choice(["red", "green", "blue"], size=n_rows)
        frame["size"] = rng.choice(["S", "M", "L", None], size=n_rows)
        y = y + frame["colour"].map({"red": 4.0, "green": 0.0, "blue": -4.0})
    frame["y"] = y
    return frame


@pytest.fixture
def frame() -> pd.DataFrame:
    return make_frame()


@pytest.fixture
def splits(frame):
    from steps.lib.data.tables import split_frame

    return split_frame(frame, "y", val_size=0.2, test_size=0.2, seed=7)


@contextlib.contextmanager
def in_process_store(directory: Path):
    """A sqlite tracking store and registry in `directory` as this process's default (environment
    and MLflow's globals), the working directory there, and its Default experiment active: an
    experiment another test activated in another store must not leak in. Yields (client, uri)."""
    import mlflow
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{directory / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as patch, contextlib.chdir(directory):
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        patch.setenv("MLFLOW_REGISTRY_URI", uri)
        patch.delenv("MLFLOW_RUN_ID", raising=False)
        patch.delenv("MLFLOW_EXPERIMENT_ID", raising=False)
        patch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
        patch.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        mlflow.set_tracking_uri(uri)
        mlflow.set_registry_uri(uri)
        mlflow.set_experiment(experiment_id="0")  # the new store's Default experiment
        try:
            yield MlflowClient(uri, registry_uri=uri), uri
        finally:
            mlflow.set_tracking_uri(None)
            mlflow.set_registry_uri(None)


def mlflow_env(tracking_uri: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    bin_dir = str(Path(sys.executable).parent)
    env.update(
        MLFLOW_TRACKING_URI=tracking_uri,
        PATH=bin_dir + os.pathsep + env.get("PATH", ""),
        MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR="false",
        GIT_TERMINAL_PROMPT="0",
        MLFLOW_DISABLE_TELEMETRY="true",
        **extra,
    )
    return env


def mlflow_run_args(entry_point: str, params: dict | None = None, *, env_manager: str | None = "local",
                    uri: str | None = None, extra_args: list[str] | None = None) -> list[str]:
    args = [sys.executable, "-m", "mlflow", "run", uri or str(PROJECT_DIR), "-e", entry_point,
            *(["--env-manager", env_manager] if env_manager else []), *(extra_args or [])]
    for key, value in (params or {}).items():
        args += ["-P", f"{key}={value}"]
    return args


def mlflow_run(tracking_uri: str, entry_point: str, params: dict | None = None, *,
               env_manager: str | None = "local", cwd: Path | None = None, uri: str | None = None,
               extra_args: list[str] | None = None, timeout: int = 900,
               env: dict | None = None) -> subprocess.CompletedProcess:
    """`mlflow run <project> -e <entry_point> -P k=v …` as a user types it."""
    args = mlflow_run_args(entry_point, params, env_manager=env_manager, uri=uri, extra_args=extra_args)
    return subprocess.run(args, cwd=cwd or PROJECT_DIR, env=mlflow_env(tracking_uri, **(env or {})),
                          capture_output=True, text=True, timeout=timeout)


class Store:
    """A throwaway sqlite tracking store and a client on it."""

    def __init__(self, directory: Path):
        import contextlib

        from mlflow.tracking import MlflowClient

        self.directory = directory
        self.uri = f"sqlite:///{directory / 'mlflow.db'}"
        # The store is created here, and MLflow puts the default experiment's artifacts in
        # ./mlruns of the process creating it: keep them in the temp dir, not the project.
        with contextlib.chdir(directory):
            self.client = MlflowClient(tracking_uri=self.uri, registry_uri=self.uri)
            self.client.search_experiments()

    def run(self, entry_point: str, params: dict | None = None, **options) -> subprocess.CompletedProcess:
        return mlflow_run(self.uri, entry_point, params, **options)

    def runs(self, filter_string: str = "") -> list:
        experiments = [e.experiment_id for e in self.client.search_experiments()]
        return self.client.search_runs(experiments, filter_string, max_results=10000)

    def runs_of(self, step: str, status: str | None = None) -> list:
        clause = f"tags.`tabtune.step` = '{step}'"
        if status:
            clause += f" and attributes.status = '{status}'"
        return self.runs(clause)

    def children(self, run_id: str) -> list:
        return self.runs(f"tags.`mlflow.parentRunId` = '{run_id}'")


@pytest.fixture
def store(tmp_path) -> Store:
    return Store(tmp_path)


@pytest.fixture(scope="session")
def session_store(tmp_path_factory) -> Store:
    return Store(tmp_path_factory.mktemp("store"))


def check(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert result.returncode == 0, f"mlflow run failed:\n{result.stdout[-4000:]}\n{result.stderr[-8000:]}"
    return result


@pytest.fixture(scope="session")
def postgres_cluster():
    """One PostgreSQL 15 cluster on loopback for the whole session (databases mlflow, optuna)."""
    from tests.servers import postgres

    with postgres() as facts:
        yield facts


@pytest.fixture(scope="session")
def tracking_server(postgres_cluster):
    """`mlflow server` backed by PostgreSQL with proxied artifacts; yields its http:// URI."""
    from tests.servers import mlflow_server

    with mlflow_server(postgres_cluster["url"]("mlflow")) as uri:
        yield uri


class ServerStore(Store):
    """The tracking server as a store: same helpers, over HTTP."""

    def __init__(self, uri: str):
        from mlflow.tracking import MlflowClient

        self.uri = uri
        self.client = MlflowClient(tracking_uri=uri, registry_uri=uri)


def memory_study():
    """A new seeded Optuna study in memory, made the way the tuning steps make theirs."""
    from steps.lib.search import sampling, studies

    study, created = studies.create_or_load("s", None, sampling.make_sampler(0, parallel=False),
                                            sampling.make_pruner("none", 10))
    assert created
    return study
