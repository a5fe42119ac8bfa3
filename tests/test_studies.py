"""Where a study lives and who works on it (steps/lib/studies.py): storage URLs, worker seeds,
the shared trial budget and the clean-up of dead workers' trials."""

from __future__ import annotations

import os
import socket
import subprocess

import optuna
import pytest
from optuna.trial import TrialState

from steps.lib import budget, process_identity, sampling, storage, studies
from steps.lib.errors import InputError

VARIABLE = "TABTUNE_TEST_STORAGE"


def memory_study():
    study, created = studies.create_or_load("s", None, sampling.make_sampler(0, parallel=False),
                                            sampling.make_pruner("none", 10))
    assert created
    return study


# ------------------------------------------------------------------------------------- storage
def test_env_storage_reads_the_variable(monkeypatch):
    monkeypatch.setenv(VARIABLE, "postgresql://u:p@db/optuna")
    assert storage.resolve_storage_url(f"env:{VARIABLE}") == "postgresql://u:p@db/optuna"
    assert storage.resolve_storage_url("sqlite:///s.db") == "sqlite:///s.db"


@pytest.mark.parametrize("value", [None, ""])
def test_env_storage_with_the_variable_unset_names_storage(monkeypatch, value):
    if value is None:
        monkeypatch.delenv(VARIABLE, raising=False)
    else:
        monkeypatch.setenv(VARIABLE, value)
    with pytest.raises(InputError, match=rf"^storage: environment variable '{VARIABLE}' is not set"):
        storage.resolve_storage_url(f"env:{VARIABLE}")


def test_no_storage_means_in_memory():
    assert storage.open_storage("") is None


def test_a_url_that_is_no_storage_is_rejected_without_its_password():
    expected = r"^storage: 'https://user:\*\*\*@example\.com/db' is not a storage URL"
    with pytest.raises(InputError, match=expected) as error:
        storage.open_storage("https://user:s3cret@example.com/db")
    assert "s3cret" not in str(error.value)


def test_journal_needs_a_path():
    with pytest.raises(InputError, match=r"^storage: journal storage needs a file path"):
        storage.open_storage("journal:")


def test_journal_storage_is_a_file_other_workers_can_open(tmp_path):
    url = f"journal:{tmp_path / 'sub' / 's.log'}"
    opened = storage.open_storage(url)
    assert isinstance(opened, optuna.storages.JournalStorage)
    study, created = studies.create_or_load("shared", opened, None, None)
    study.enqueue_trial({"x": 1.0})
    assert created and (tmp_path / "sub" / "s.log").is_file()
    # A second worker, through its own storage object on the same file, joins the same study.
    joined, created = studies.create_or_load("shared", storage.open_storage(url), None, None)
    assert not created and len(joined.trials) == 1


# ---------------------------------------------------------------------------------------- seeds
def test_a_second_worker_asking_for_the_same_seed_gets_another_one():
    study = memory_study()
    first = sampling.worker_seed(study, 42, process_identity.Worker("host-a", 100))
    second = sampling.worker_seed(study, 42, process_identity.Worker("host-b", 200))
    other = sampling.worker_seed(study, 7, process_identity.Worker("host-c", 300))
    assert first == 42 and second != 42 and other == 7
    assert study.user_attrs[sampling.SEEDS_ATTR] == [42, second, 7]


# --------------------------------------------------------------------------------------- budget
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


# --------------------------------------------------------------------------------- dead workers
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


# ------------------------------------------------------------------------- samplers and pruners
@pytest.mark.parametrize(("name", "expected"), [
    ("none", optuna.pruners.NopPruner),
    ("median", optuna.pruners.MedianPruner),
    ("hyperband", optuna.pruners.HyperbandPruner),
])
def test_make_pruner(name, expected):
    assert type(sampling.make_pruner(name, 100)) is expected


@pytest.mark.parametrize("parallel", [False, True])
def test_make_sampler_is_a_seeded_tpe_sampler(parallel):
    first, second = (sampling.make_sampler(3, parallel=parallel) for _ in range(2))
    assert type(first) is optuna.samplers.TPESampler
    # same seed, same first proposal
    proposals = []
    for sampler in (first, second):
        study = optuna.create_study(sampler=sampler)
        proposals.append(study.ask().suggest_float("x", 0, 1))
    assert proposals[0] == proposals[1]
