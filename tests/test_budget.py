"""The trial budget workers sharing a study count together, and dead workers' trials
(steps/lib/search/budget.py)."""

from __future__ import annotations

import os
import socket
import subprocess

from optuna.trial import TrialState

from steps.lib import process_identity
from steps.lib.search import budget, storage, studies
from tests.conftest import memory_study


def test_only_the_first_trials_by_number_have_a_slot():
    study = memory_study()
    shared = budget.SharedBudget(study, 2, process_identity.Worker("host-a", 100))
    asked = [study.ask() for _ in range(3)]
    assert [t.number for t in asked] == [0, 1, 2]
    assert [shared.claim(t) for t in asked] == [True, True, False]
    assert [t.user_attrs.get(budget.WORKER_ATTR) for t in study.trials] == ["host-a:100"] * 3
    assert [budget.is_surplus(t) for t in study.trials] == [False, False, True]
    assert shared.used_up()


def test_surplus_and_failed_trials_do_not_use_up_the_budget():
    study = memory_study()
    surplus, failed, finished, running = (study.ask() for _ in range(4))
    surplus.set_user_attr(budget.SURPLUS_ATTR, True)
    study.tell(failed, state=TrialState.FAIL)
    study.tell(finished, 1.0)
    assert [t.number for t in budget.counted_trials(study)] == [finished.number, running.number]
    shared = budget.SharedBudget(study, 2, process_identity.Worker("host-a", 100))
    assert shared.claim(running) and shared.used_up()


def dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def test_running_trials_of_dead_workers_on_this_host_are_failed(tmp_path):
    study, _ = studies.create_or_load("w", storage.open_storage(f"journal:{tmp_path / 's.log'}"), None, None)
    here, gone = socket.gethostname(), dead_pid()
    owners = {
        "dead": f"{here}:{gone}",
        "alive": f"{here}:{os.getpid()}",
        "elsewhere": f"another-{here}:{gone}",  # another host: left to the database heartbeat
    }
    trials = {}
    for owner, worker in owners.items():
        trials[owner] = study.ask()
        trials[owner].set_user_attr(budget.WORKER_ATTR, worker)
    trials["unknown"] = study.ask()  # no worker recorded
    assert budget.fail_dead_workers_trials(study) == [trials["dead"].number]
    states = {owner: study.trials[trial.number].state for owner, trial in trials.items()}
    assert states == {"dead": TrialState.FAIL, "alive": TrialState.RUNNING, "elsewhere": TrialState.RUNNING,
                      "unknown": TrialState.RUNNING}
