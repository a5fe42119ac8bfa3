"""Reruns that cost nothing, through the real `mlflow run` CLI on a sqlite store: `main` reuses a
step's earlier run exactly when everything that determines it is the same, and a pipeline killed
mid-way resumes at the step it was in. The project is a copy, so a test may edit its code."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess

import pytest

from tests.conftest import PROJECT_DIR, TINY, Store, check, make_frame, mlflow_env, mlflow_run_args

pytestmark = pytest.mark.slow
STEPS = ["prepare", "tune_lasso", "tune_catboost", "refit", "package"]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("reuse")
    project = root / "project"
    project.mkdir()
    shutil.copytree(PROJECT_DIR / "steps", project / "steps", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("MLproject", "python_env.yaml", "conda.yaml", "requirements.txt"):
        shutil.copy(PROJECT_DIR / name, project)
    data = root / "table.csv"
    make_frame(n_rows=120, seed=9).to_csv(data, index=False)
    return Store(root), project, data


def run_main(setup, **params) -> dict[str, str]:
    """One pipeline run; what it said it did with each step ('ran' or 'reused')."""
    store, project, data = setup
    result = check(store.run("main", {**TINY, "data": str(data), "target": "y", **params}, uri=str(project),
                             cwd=project))
    return dict(re.findall(r"^main: (\w+): (ran|reused) [0-9a-f]+$", result.stdout, flags=re.M))


def versions(store) -> int:
    return len(store.client.search_model_versions("name = 'tabtune-regressor'"))


@pytest.fixture(scope="module")
def first(setup):
    said = run_main(setup)
    assert said == dict.fromkeys(STEPS, "ran")
    return said


def test_a_full_rerun_reuses_every_step_and_registers_nothing(setup, first):
    store = setup[0]
    before = versions(store)
    assert run_main(setup) == dict.fromkeys(STEPS, "reused")
    assert versions(store) == before
    pipelines = sorted(store.runs_of("main", "FINISHED"), key=lambda r: r.info.start_time)
    last, original = pipelines[-1], pipelines[0]
    children = store.children(last.info.run_id)
    assert sorted(c.data.tags["tabtune.step"] for c in children) == sorted(STEPS)
    for child in children:
        step = child.data.tags["tabtune.step"]
        assert child.info.status == "FINISHED"
        assert child.data.tags["tabtune.reused_from"] == original.data.tags[f"tabtune.run_id.{step}"]
        assert last.data.tags[f"tabtune.run_id.{step}"] == child.data.tags["tabtune.reused_from"]
    refit = next(c for c in children if c.data.tags["tabtune.step"] == "refit")
    assert refit.data.metrics["test_rmse"] == last.data.metrics["test_rmse"]


def test_changing_early_stopping_rounds_reruns_refit_and_package(setup, first):
    said = run_main(setup, early_stopping_rounds=7)
    assert said == {"prepare": "reused", "tune_lasso": "reused", "tune_catboost": "reused", "refit": "ran",
                    "package": "ran"}


def test_an_uncommitted_edit_to_refit_reruns_refit_and_package(setup, first):
    _, project, _ = setup
    with open(project / "steps" / "refit.py", "a") as handle:
        handle.write("\n# an edit nobody committed\n")
    said = run_main(setup)
    assert said == {"prepare": "reused", "tune_lasso": "reused", "tune_catboost": "reused", "refit": "ran",
                    "package": "ran"}


def test_one_changed_byte_in_the_data_reruns_everything(setup, first):
    _, _, data = setup
    text = data.read_text()
    data.write_text(text[:-2] + ("1" if text[-2] != "1" else "2") + text[-1])
    assert run_main(setup) == dict.fromkeys(STEPS, "ran")


def test_reuse_none_runs_everything(setup, first):
    assert run_main(setup, reuse="none") == dict.fromkeys(STEPS, "ran")


def test_a_pipeline_killed_during_tuning_resumes_at_tuning(setup, first):
    store, project, data = setup
    budget = {"trials": 40, "iterations": 100}
    process = subprocess.Popen(
        mlflow_run_args("main", {**TINY, "data": str(data), "target": "y", **budget}, uri=str(project)),
        cwd=project, env=mlflow_env(store.uri), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True)
    try:
        for line in process.stdout:  # killed once the tuning step has finished a trial
            if line.startswith("tune_catboost: trial #"):
                break
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    said = run_main(setup, **budget)
    assert said == {"prepare": "reused", "tune_lasso": "reused", "tune_catboost": "ran", "refit": "ran",
                    "package": "ran"}
