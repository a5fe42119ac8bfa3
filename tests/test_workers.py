"""The shared-study workflow (join, reap, finish) against a real sqlite tracking store and a
journal-file Optuna storage: two workers in one process stand for two processes."""

from __future__ import annotations

import os
import subprocess

import optuna
import pytest

from steps.lib import names, tracking
from steps.lib.errors import InputError
from steps.lib.search import budget, sampling, studies, workers
from tests.conftest import in_process_store

JOIN = dict(family="catboost", study_name="s", trials=3, seed=7, n_jobs=1, pruner="none", pruning_steps=10)


@pytest.fixture
def client(tmp_path):
    with in_process_store(tmp_path) as (client, _):
        yield client


def new_run(client) -> str:
    return client.create_run(client.get_experiment_by_name("Default").experiment_id).info.run_id


def dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def test_in_memory_study_is_a_one_worker_study_on_the_step_s_own_run(client):
    own = new_run(client)
    member = workers.join(storage="", own_run_id=own, **JOIN)
    assert (member.shared, member.tuning_run_id, member.budget) == (False, own, None)
    assert workers.reap(member) == []


def test_a_second_worker_attaches_to_the_first_one_s_tuning_run(client, tmp_path):
    storage = f"journal:{tmp_path / 'study.log'}"
    first_run, second_run = new_run(client), new_run(client)
    first = workers.join(storage=storage, own_run_id=first_run, **JOIN)
    second = workers.join(storage=storage, own_run_id=second_run, **JOIN)
    assert first.tuning_run_id == second.tuning_run_id == first_run
    tags = client.get_run(second_run).data.tags
    assert tags[names.STEP_TAG] == "tune_catboost.worker" and tags[names.TUNING_RUN_TAG] == first_run
    assert tags[names.PARENT_RUN_TAG] == first_run
    seeds = second.study.user_attrs[sampling.SEEDS_ATTR]
    assert seeds[0] == 7 and len(set(seeds)) == 2  # the same seed asked twice: the second is derived


def test_an_explicit_parent_run_that_is_not_the_study_s_is_refused(client, tmp_path):
    storage = f"journal:{tmp_path / 'study.log'}"
    workers.join(storage=storage, own_run_id=new_run(client), **JOIN)
    with pytest.raises(InputError, match=r"^parent_run_id: study 's' belongs to tuning run"):
        workers.join(storage=storage, own_run_id=new_run(client), parent_run_id="0" * 32, **JOIN)


def test_reap_fails_a_dead_worker_s_trial_and_its_child_run_once(client, tmp_path):
    storage = f"journal:{tmp_path / 'study.log'}"
    member = workers.join(storage=storage, own_run_id=new_run(client), **JOIN)
    orphan = member.study.ask()
    orphan.set_user_attr(budget.WORKER_ATTR, f"{os.uname().nodename}:{dead_pid()}")
    writer = tracking.ChildRunWriter(member.tuning_run_id)
    child = writer.start("trial-000", {names.TRIAL_NUMBER_TAG: str(orphan.number)})
    alive = member.study.ask()
    alive.set_user_attr(budget.WORKER_ATTR, f"{os.uname().nodename}:{os.getpid()}")

    assert workers.reap(member) == [orphan.number]
    states = {t.number: t.state for t in member.study.get_trials(deepcopy=False)}
    assert states == {orphan.number: optuna.trial.TrialState.FAIL, alive.number: optuna.trial.TrialState.RUNNING}
    ended = client.get_run(child)
    assert ended.info.status == "FAILED" and ended.data.tags[names.TRIAL_STATE_TAG] == "failed"
    assert workers.reap(member) == []  # again: nothing new, and no second child run
    assert len(tracking.child_runs(member.tuning_run_id)) == 1


def test_finish_leaves_the_summary_to_the_last_worker(client, tmp_path):
    storage = f"journal:{tmp_path / 'study.log'}"
    member = workers.join(storage=storage, own_run_id=new_run(client), **JOIN)
    done = member.study.ask()
    done.set_user_attr(studies.METRICS_ATTR, {"val_rmse": 2.0, "val_mae": 1.0, "val_r2": 0.5})
    member.study.tell(done, 2.0)
    running = member.study.ask()
    running.set_user_attr(budget.WORKER_ATTR, f"{os.uname().nodename}:{os.getpid()}")
    assert workers.finish(member, family="catboost", fixed={"iterations": 10}) is None
    member.study.tell(running, 3.0)
    summary = workers.finish(member, family="catboost", fixed={"iterations": 10})
    assert summary.best == {"family": "catboost", "params": {"iterations": 10}, "val_rmse": 2.0, "trial": 0,
                            "study_name": "s"}
    assert summary.metrics["trials_complete"] == 2 and summary.metrics["best_val_mae"] == 1.0
