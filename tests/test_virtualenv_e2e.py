"""The pinned python_env.yaml really installs and runs: one step under MLflow's default env manager.

Without --env-manager, MLflow builds a python_env project's environment with its `virtualenv`
manager: pyenv's Python of python_env.yaml, `python -m venv` in MLFLOW_ENV_ROOT/mlflow-<hash>,
the pins installed with pip, then the entry point run after `source <env>/bin/activate`. The
environment root is the test's own, so the environment is built every time (a cached one would
prove nothing about installing)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import PROJECT_DIR, check

pytestmark = pytest.mark.slow

PYTHON_ENV = yaml.safe_load((PROJECT_DIR / "python_env.yaml").read_text())
PINS = dict(pin.split("==") for pin in PYTHON_ENV["dependencies"])
VERSIONS = ("import importlib.metadata as m, json, platform, sys; "
            "print(json.dumps({'python': platform.python_version(), **{n: m.version(n) for n in sys.argv[1:]}}))")


@pytest.mark.skipif(shutil.which("pyenv") is None, reason="MLflow's virtualenv env manager needs pyenv")
def test_prepare_runs_in_a_new_virtualenv_of_the_pinned_python_and_packages(store, tmp_path):
    env_root = tmp_path / "envs"
    result = check(store.run("prepare", {}, env_manager=None, timeout=1800, env={"MLFLOW_ENV_ROOT": str(env_root)}))
    (run,) = store.runs_of("prepare", "FINISHED")
    assert run.data.tags["mlflow.project.env"] == "virtualenv"
    metrics = run.data.metrics
    assert metrics["rows_train"] + metrics["rows_val"] + metrics["rows_test"] == 442

    # One environment, built from pyenv's Python of python_env.yaml ...
    (env_dir,) = env_root.iterdir()
    pyenv_root = Path(subprocess.run(["pyenv", "root"], capture_output=True, text=True, check=True).stdout.strip())
    python = pyenv_root / "versions" / PYTHON_ENV["python"] / "bin" / "python"
    assert f"Creating a new environment in {env_dir} with {python}\n" in result.stderr
    # ... and the step ran with that environment's interpreter, not the one running the tests.
    (command,) = [line for line in result.stderr.splitlines() if "=== Running command" in line]
    assert f"'source {env_dir}/bin/activate && python -m steps.prepare " in command
    # The environment holds exactly the pinned Python and packages.
    found = subprocess.run([env_dir / "bin" / "python", "-c", VERSIONS, *PINS], capture_output=True, text=True,
                           check=True)
    assert json.loads(found.stdout) == {"python": PYTHON_ENV["python"], **PINS}
