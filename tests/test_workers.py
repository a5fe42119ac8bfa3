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


@pytest.mark.parametrize("ending", ["KILLED", "FAILED", "process gone"])
def test_a_study_whose_tuning_run_ended_unfinished_is_taken_over_by_the_next_run(client, tmp_path, capsys, ending):
    """A pipeline interrupted during tuning and run again: the rerun's tuning run takes the study
    over (its trials and summary go there, refit can read it), the earlier trial stays a child of
    the run that made it, and a worker still attached to the old run summarizes on the new one."""
    storage = f"journal:{tmp_path / 'study.log'}"
    interrupted = new_run(client)
    first = workers.join(storage=storage, own_run_id=interrupted, **JOIN)
    earlier = first.study.ask()
    earlier.set_user_attr(studies.METRICS_ATTR, {"val_rmse": 2.0})
    first.study.tell(earlier, 2.0)
    straggler = workers.join(storage=storage, own_run_id=new_run(client), **JOIN)
    assert straggler.tuning_run_id == interrupted
    if ending == "process gone":  # SIGKILL: the run stays RUNNING, its process is gone
        first.study.set_user_attr(studies.OWNER_ATTR, f"{os.uname().nodename}:{dead_pid()}")
    else:
        client.set_terminated(interrupted, ending)

    rerun = new_run(client)
    resumed = workers.join(storage=storage, own_run_id=rerun, **JOIN)
    assert resumed.tuning_run_id == rerun and resumed.study.user_attrs[studies.PARENT_RUN_ATTR] == rerun
    assert names.STEP_TAG not in client.get_run(rerun).data.tags  # not marked a worker of the old run
    said = capsys.readouterr().out
    assert f"its tuning run {interrupted} " in said and f"run {rerun} takes it over (its 1 earlier trials" in said
    # The straggler's trial ends; being last, it writes the summary, counting every trial, to the new owner.
    summary = workers.finish(straggler, family="catboost", fixed={"iterations": 10})
    assert straggler.tuning_run_id == rerun and summary.metrics["trials_complete"] == 1


def test_a_finished_tuning_run_keeps_its_study(client, tmp_path):
    storage = f"journal:{tmp_path / 'study.log'}"
    finished = new_run(client)
    workers.join(storage=storage, own_run_id=finished, **JOIN)
    client.set_terminated(finished, "FINISHED")
    later = new_run(client)
    assert workers.join(storage=storage, own_run_id=later, **JOIN).tuning_run_id == finished
    assert client.get_run(later).data.tags[names.TUNING_RUN_TAG] == finished


def test_a_trial_asked_for_but_never_claimed_is_failed_by_its_interrupted_worker_or_later_by_age(
        client, tmp_path, monkeypatch):
    """A SIGINT between Optuna's ask and tabtune's claim leaves a RUNNING trial naming no worker:
    the interrupted worker fails it (with its own running trial), and if it could not (SIGKILL),
    reap fails it once it is older than any live worker takes to claim one."""
    storage = f"journal:{tmp_path / 'study.log'}"
    member = workers.join(storage=storage, own_run_id=new_run(client), **JOIN)
    other = member.study.ask()
    other.set_user_attr(budget.WORKER_ATTR, f"{os.uname().nodename}:{os.getpid() + 1}")  # another live worker
    own = member.study.ask()
    own.set_user_attr(budget.WORKER_ATTR, f"{os.uname().nodename}:{os.getpid()}")
    unclaimed = member.study.ask()
    workers.abandon(member)
    states = {t.number: t.state.name for t in member.study.get_trials(deepcopy=False)}
    assert states == {other.number: "RUNNING", own.number: "FAIL", unclaimed.number: "FAIL"}

    killed = member.study.ask()  # its process was SIGKILLed before claiming it
    monkeypatch.setattr(budget, "UNCLAIMED_AFTER_S", 3600)
    workers.reap(member)
    assert member.study.trials[killed.number].state.name == "RUNNING"  # could still be claimed
    monkeypatch.setattr(budget, "UNCLAIMED_AFTER_S", -1)
    workers.reap(member)
    assert member.study.trials[killed.number].state.name == "FAIL"


SETTINGS = {"family": "catboost", "fixed": {"iterations": 10}, "data_run_id": "d1", "tune_rows": 0,
            "validation": "cv", "folds": 5, "pruner": "none", "code": "c1"}


def test_a_study_made_under_other_settings_is_refused_naming_the_setting(client, tmp_path):
    storage = f"journal:{tmp_path / 'study.log'}"
    first = workers.join(storage=storage, own_run_id=new_run(client), settings=SETTINGS, **JOIN)
    assert first.study.user_attrs[studies.SETTINGS_ATTR] == SETTINGS
    workers.join(storage=storage, own_run_id=new_run(client), settings=dict(SETTINGS), **JOIN)  # same: joins
    with pytest.raises(InputError, match=r"^study_name: study 's' was made with pruner='none', not 'median': use "
                                         r"another study_name \(left empty, the name follows these settings\)$"):
        workers.join(storage=storage, own_run_id=new_run(client), settings={**SETTINGS, "pruner": "median"}, **JOIN)
    # The default name follows the settings, so a changed setting starts another study.
    names_by = {workers.default_study_name("catboost", "d1", 10, {**SETTINGS, **change})
                for change in ({}, {"tune_rows": 100}, {"code": "c2"}, {"fixed": {"iterations": 10, "depth": 4}})}
    assert len(names_by) == 4 and all(name.startswith("tabtune-catboost-d1-it10-") for name in names_by)


def test_a_study_with_trials_but_no_recorded_settings_is_refused(client, tmp_path):
    storage = f"journal:{tmp_path / 'study.log'}"
    old = workers.join(storage=storage, own_run_id=new_run(client), **JOIN)  # an earlier tabtune: no settings
    old.study.tell(old.study.ask(), 1.0)
    with pytest.raises(InputError, match=r"^study_name: study 's' records no settings"):
        workers.join(storage=storage, own_run_id=new_run(client), settings=SETTINGS, **JOIN)


def test_an_interrupted_in_memory_study_is_carried_over_from_its_trial_runs():
    """The finished trials' child runs (parameters as text, val_rmse, state) become trials of the
    new study with their typed parameters, values and states; a trial the space no longer takes,
    and a failed one, are left out."""
    from types import SimpleNamespace

    from steps.lib.families import get_family

    def trial_run(number, state, value=None, **params):
        metrics = {"trial_number": float(number), **({"val_rmse": value, "val_mae": value / 2} if value else {})}
        return SimpleNamespace(info=SimpleNamespace(run_id=f"r{number}"),
                               data=SimpleNamespace(params={k: str(v) for k, v in params.items()}, metrics=metrics,
                                                    tags={"tabtune.trial_state": state}))

    space = dict(depth=6, learning_rate=0.05, l2_leaf_reg=3.0, bagging_temperature=0.5, random_strength=1.0,
                 iterations=500, family="catboost")  # fixed parameters and the step's own are logged too
    runs = [trial_run(1, "pruned", **space), trial_run(0, "complete", 4.5, **space),
            trial_run(2, "failed", **space), trial_run(3, "complete", 4.0, **{**space, "depth": 99})]
    study = optuna.create_study()
    assert studies.carry_over(study, get_family("catboost").space, runs) == 2
    first, second = study.get_trials(deepcopy=False)
    assert first.state.name == "COMPLETE" and first.value == 4.5 and first.params["depth"] == 6
    assert first.params["learning_rate"] == 0.05 and set(first.params) == set(space) - {"iterations", "family"}
    assert first.user_attrs[studies.METRICS_ATTR]["val_mae"] == 2.25 and first.user_attrs[studies.CARRIED_ATTR] == "r0"
    assert second.state.name == "PRUNED"
    assert study.best_trial.number == 0
