"""tune_catboost past one process: workers sharing a PostgreSQL study, a SIGKILLed worker
resumed, and parallel trials in one process. Real PostgreSQL and `mlflow server` on loopback."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time

import optuna
import pytest
from optuna.trial import TrialState

from tests.conftest import PROJECT_DIR, ServerStore, check, mlflow_env, mlflow_run, mlflow_run_args

pytestmark = pytest.mark.slow
STORAGE_VAR = "TABTUNE_TEST_OPTUNA_STORAGE"


def last_run_id(result) -> str:
    return re.findall(r"Run \(ID '([0-9a-f]+)'\) succeeded", result.stderr)[-1]


@pytest.fixture(scope="module")
def server(tracking_server):
    return ServerStore(tracking_server)


@pytest.fixture(scope="module")
def data_run_id(server):
    result = mlflow_run(server.uri, "prepare", {}, extra_args=["--experiment-name", "scaling"])
    return last_run_id(check(result))


@pytest.fixture
def storage_env(postgres_cluster):
    """The study storage, password included, passed through an environment variable."""
    return {STORAGE_VAR: postgres_cluster["url"]("optuna")}


def worker_args(data_run_id: str, study: str, trials: int, iterations: int, seed: int) -> list[str]:
    return mlflow_run_args("tune_catboost", {
        "data_run_id": data_run_id, "storage": f"env:{STORAGE_VAR}", "study_name": study,
        "trials": trials, "iterations": iterations, "seed": seed},
        extra_args=["--experiment-name", "scaling"])


def load(storage_env, study: str) -> optuna.Study:
    return optuna.load_study(study_name=study, storage=storage_env[STORAGE_VAR])


def trial_children(server, tuning_run_id: str) -> list:
    return [r for r in server.children(tuning_run_id) if "tabtune.trial_number" in r.data.tags]


def counted(study: optuna.Study) -> list:
    return [t for t in study.trials if not t.user_attrs.get("tabtune.surplus")]


def test_three_workers_share_one_study(server, data_run_id, storage_env, postgres_cluster):
    study_name = "three-workers"
    # Trials long enough (~1 s) that all three workers are up before the first one has done all nine.
    workers = [subprocess.Popen(worker_args(data_run_id, study_name, 9, 1500, seed), cwd=PROJECT_DIR,
                                env=mlflow_env(server.uri, **storage_env), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True) for seed in (1, 2, 3)]
    outputs = [worker.communicate(timeout=600) for worker in workers]
    failures = [err[-3000:] for worker, (_, err) in zip(workers, outputs, strict=True)
                if worker.returncode != 0]
    assert not failures, "\n----\n".join(failures)
    study = load(storage_env, study_name)
    trials = counted(study)
    assert len(trials) == 9 and {t.state for t in trials} == {TrialState.COMPLETE}
    assert sorted(t.number for t in trials) == sorted({t.number for t in trials})
    tuning_run_id = study.user_attrs["tabtune.mlflow_run_id"]
    children = trial_children(server, tuning_run_id)
    numbers = sorted(int(r.data.tags["tabtune.trial_number"]) for r in children)
    assert numbers == sorted(t.number for t in trials)
    assert [(r.info.status, r.data.tags.get("tabtune.trial_state"), r.data.tags.get("tabtune.error"))
            for r in children if r.info.status != "FINISHED"] == []
    assert len({r.data.tags["tabtune.worker"] for r in children}) >= 2
    worker_runs = [r for r in server.children(tuning_run_id)
                   if r.data.tags.get("tabtune.step") == "tune_catboost.worker"]
    assert len(worker_runs) == 2
    tuning = server.client.get_run(tuning_run_id)
    assert tuning.data.tags["tabtune.step"] == "tune_catboost"
    assert tuning.data.metrics["best_val_rmse"] == study.best_value
    # The storage URL (with its password) went through an environment variable, never a param.
    for run in [tuning, *worker_runs, *children]:
        assert postgres_cluster["password"] not in str(run.data.params) + str(run.data.tags)


def test_a_killed_worker_is_resumed(server, data_run_id, storage_env):
    study_name = "killed-and-resumed"
    args = worker_args(data_run_id, study_name, 6, 2500, 7)
    first = subprocess.Popen(args, cwd=PROJECT_DIR, env=mlflow_env(server.uri, **storage_env),
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    victim = None
    deadline = time.monotonic() + 300
    while victim is None and time.monotonic() < deadline:
        time.sleep(0.5)
        try:
            study = load(storage_env, study_name)
        except KeyError:
            continue
        complete = study.get_trials(states=(TrialState.COMPLETE,))
        running = study.get_trials(states=(TrialState.RUNNING,))
        # Killed in its fit: claimed by the worker and every parameter suggested (Optuna stores
        # each suggestion as it is made, so a trial seen between its claim and its last suggestion
        # would be killed with parameters it never got).
        if (len(complete) >= 2 and running and "tabtune.worker" in running[0].user_attrs
                and set(running[0].params) == set(complete[0].params)):
            victim = running[0]
    assert victim is not None, "the worker never got two trials done"
    os.kill(int(victim.user_attrs["tabtune.worker"].rsplit(":", 1)[1]), signal.SIGKILL)
    first.communicate(timeout=120)
    assert first.returncode != 0

    check(subprocess.run(args, cwd=PROJECT_DIR, env=mlflow_env(server.uri, **storage_env),
                         capture_output=True, text=True, timeout=600))
    study = load(storage_env, study_name)
    assert study.trials[victim.number].state == TrialState.FAIL
    assert len(study.get_trials(states=(TrialState.COMPLETE,))) == 6
    assert not study.get_trials(states=(TrialState.RUNNING,))
    # The killed worker's tuning run ended (`mlflow run` marks it FAILED when its step process
    # dies; left RUNNING, the rerun ends it KILLED): the rerun took the study over, the earlier
    # trials stay that run's children, and the rerun's trials are the new run's.
    [earlier] = study.user_attrs["tabtune.earlier_tuning_runs"]
    assert server.client.get_run(earlier).info.status in ("FAILED", "KILLED")
    assert study.user_attrs["tabtune.mlflow_run_id"] != earlier
    children = [*trial_children(server, earlier), *trial_children(server, study.user_attrs["tabtune.mlflow_run_id"])]
    numbers = [int(r.data.tags["tabtune.trial_number"]) for r in children]
    assert len(numbers) == len(set(numbers)) == 7
    killed = next(r for r in children if int(r.data.tags["tabtune.trial_number"]) == victim.number)
    # ended where it was made (or made by the rerun if the worker died before making it), once
    assert killed.info.status == "FAILED" and killed.data.tags["tabtune.trial_state"] == "failed"
    assert killed.data.params["depth"] == str(victim.params["depth"])
    assert sum(r.data.tags["tabtune.trial_state"] == "complete" for r in children) == 6
    assert not [r for r in children if r.info.status == "RUNNING"]


def test_parallel_trials_in_one_process(store):
    result = check(store.run("tune_catboost", {"trials": 4, "iterations": 40, "n_jobs": 2}))
    tune_id = last_run_id(result)
    children = trial_children(store, tune_id)
    assert sorted(int(r.data.tags["tabtune.trial_number"]) for r in children) == [0, 1, 2, 3]
    assert {r.data.params["thread_count"] for r in children} == {str(max(1, (os.cpu_count() or 1) // 2))}
    assert all(r.data.tags["mlflow.parentRunId"] == tune_id for r in children)
    assert store.client.get_run(tune_id).data.metrics["trials_complete"] == 4
