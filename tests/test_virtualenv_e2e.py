"""The pinned python_env.yaml really installs and runs: one step under MLflow's default env manager."""

from __future__ import annotations

import shutil

import pytest

from tests.conftest import check

pytestmark = pytest.mark.slow


@pytest.mark.skipif(shutil.which("pyenv") is None, reason="MLflow's virtualenv env manager needs pyenv")
def test_prepare_runs_in_the_pinned_virtualenv(store):
    result = check(store.run("prepare", {}, env_manager=None, timeout=1800))
    assert "virtualenv" in result.stderr.lower() or "Environment" in result.stderr
    (run,) = store.runs_of("prepare", "FINISHED")
    metrics = run.data.metrics
    assert metrics["rows_train"] + metrics["rows_val"] + metrics["rows_test"] == 442
    command = next(line for line in result.stderr.splitlines() if "Running command" in line)
    # The step ran with the interpreter of the environment MLflow built, not the one running the tests.
    assert ".mlflow/envs/" in command or "mlflow-" in command, command
