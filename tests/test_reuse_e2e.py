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
    return len(store.client.search_model_versions("name = 'tabtune_table'"))


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
    package = original.data.tags["tabtune.run_id.package"]
    assert f"Reused `tabtune_table` version 1 (registered by package run {package}: nothing registered now)" in (
        last.data.tags["mlflow.note.content"])


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


def interrupted_then_rerun(setup, table: str, params: dict, sig: int) -> tuple[str, dict[str, str], str]:
    """A pipeline on a new table (nothing of it cached), sent `sig` once tune_lasso has finished
    and its CatBoost tuning has finished a trial (the two run side by side), then the same
    command again. Returns the interrupted pipeline's run ID, what the rerun said it did with
    each step, and what the interrupted pipeline printed (for a failing assertion to show)."""
    store, project, _ = setup
    data = project.parent / f"{table}.csv"
    make_frame(n_rows=120, seed=len(table)).to_csv(data, index=False)
    params = {**TINY, "data": str(data), "target": "y", **params}
    before = {r.info.run_id for r in store.runs_of("main")}
    process = subprocess.Popen(mlflow_run_args("main", params, uri=str(project)), cwd=project,
                               env=mlflow_env(store.uri), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True)
    try:
        seen, printed = set(), []
        for line in process.stdout:
            printed.append(line)
            if line.startswith("tune_catboost: trial #"):
                seen.add("trial")
            elif line.startswith("main: tune_lasso: ran "):
                seen.add("lasso")
            if seen == {"trial", "lasso"}:
                break
        os.killpg(process.pid, sig)
        printed.append(process.communicate(timeout=120)[0])
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
    [interrupted] = [r.info.run_id for r in store.runs_of("main") if r.info.run_id not in before]
    result = check(store.run("main", params, uri=str(project), cwd=project))
    said = dict(re.findall(r"^main: (\w+): (ran|reused) [0-9a-f]+$", result.stdout, flags=re.M))
    return interrupted, said, "".join(printed)


def reused_from_pipeline(store, pipeline_run_id: str) -> dict[str, str]:
    """What the newest pipeline's stand-ins were reused from: step -> the pipeline that ran it."""
    newest = max(store.runs_of("main", "FINISHED"), key=lambda r: r.info.start_time)
    stand_ins = [child for child in store.children(newest.info.run_id) if "tabtune.reused_from" in child.data.tags]
    return {child.data.tags["tabtune.step"]: store.client.get_run(
        child.data.tags["tabtune.reused_from"]).data.tags["mlflow.parentRunId"] for child in stand_ins}


def test_a_pipeline_killed_during_tuning_resumes_at_tuning(setup):
    """SIGKILL (nothing marks the runs): the same command again reuses what the killed pipeline
    finished — prepare and tune_lasso, nothing else was ever run on this table — and runs the rest."""
    store = setup[0]
    trials = 25
    killed, said, _ = interrupted_then_rerun(setup, "killed", {"trials": trials, "iterations": 100}, signal.SIGKILL)
    assert said == {"prepare": "reused", "tune_lasso": "reused", "tune_catboost": "ran", "refit": "ran",
                    "package": "ran"}
    assert reused_from_pipeline(store, killed) == {"prepare": killed, "tune_lasso": killed}
    # The in-memory study died with its process; its finished trials were child runs, and the
    # rerun's study starts from them: it runs only the trials left, numbered on from them.
    [killed_tuning] = [r for r in store.children(killed) if r.data.tags["tabtune.step"] == "tune_catboost"]
    finished = [r for r in store.children(killed_tuning.info.run_id) if r.info.status == "FINISHED"]
    newest = max(store.runs_of("main", "FINISHED"), key=lambda r: r.info.start_time)
    [tuning] = [r for r in store.children(newest.info.run_id) if r.data.tags["tabtune.step"] == "tune_catboost"]
    assert len(finished) >= 1 and tuning.data.metrics["trials_carried_over"] == len(finished)
    new_trials = store.children(tuning.info.run_id)
    assert len(new_trials) == trials - len(finished)
    assert min(int(r.data.metrics["trial_number"]) for r in new_trials) == len(finished)


def test_an_interrupted_pipeline_with_a_persistent_study_resumes_it_and_finishes(setup):
    """Ctrl-C during tuning with `storage` set: the rerun's tuning run takes the study over (the
    interrupted run ended KILLED), tunes only the trials left, and refit and package finish."""
    store, project, _ = setup
    storage = f"sqlite:///{project.parent / 'optuna.db'}"
    trials = 20
    interrupted, said, printed = interrupted_then_rerun(setup, "resumed", {"trials": trials, "iterations": 100,
                                                                  "storage": storage},
                                               signal.SIGINT)
    assert said == {"prepare": "reused", "tune_lasso": "reused", "tune_catboost": "ran", "refit": "ran",
                    "package": "ran"}
    assert reused_from_pipeline(store, interrupted) == {"prepare": interrupted, "tune_lasso": interrupted}
    [killed_tuning] = [r for r in store.children(interrupted) if r.data.tags["tabtune.step"] == "tune_catboost"]
    assert killed_tuning.info.status == "KILLED", (killed_tuning.data.tags, printed[-6000:])
    newest = max(store.runs_of("main", "FINISHED"), key=lambda r: r.info.start_time)
    steps = {r.data.tags["tabtune.step"]: r for r in store.children(newest.info.run_id)}
    tuning = steps["tune_catboost"]
    assert tuning.info.status == "FINISHED" and steps["refit"].data.tags["tabtune.tune_run_ids"].count(
        tuning.info.run_id) == 1
    earlier = [r for r in store.children(killed_tuning.info.run_id) if r.info.status == "FINISHED"]
    later = [r for r in store.children(tuning.info.run_id) if r.info.status == "FINISHED"]
    assert earlier and len(earlier) + len(later) == trials  # the study went on, not from trial 0
    assert tuning.data.metrics["trials_complete"] + tuning.data.metrics.get("trials_pruned", 0) == trials
    assert steps["package"].info.status == "FINISHED"


def test_a_package_step_whose_version_was_deleted_runs_again_instead_of_being_reused(setup, first):
    store = setup[0]
    run_main(setup)  # whatever earlier tests changed: afterwards every step has a finished run
    assert run_main(setup) == dict.fromkeys(STEPS, "reused")
    newest = max(store.runs_of("main", "FINISHED"), key=lambda r: r.info.start_time)
    [stand_in] = [c for c in store.children(newest.info.run_id) if c.data.tags["tabtune.step"] == "package"]
    package_run = store.client.get_run(stand_in.data.tags["tabtune.reused_from"])
    version = package_run.data.params["registered_version"]
    fingerprint = store.client.get_model_version("tabtune_table", version).tags["tabtune.model_fingerprint"]
    store.client.delete_model_version("tabtune_table", version)

    assert run_main(setup) == {**dict.fromkeys(STEPS[:-1], "reused"), "package": "ran"}
    registered = [v for v in store.client.search_model_versions("name = 'tabtune_table'")
                  if v.tags.get("tabtune.model_fingerprint") == fingerprint]
    assert len(registered) == 1 and str(registered[0].version) != version
