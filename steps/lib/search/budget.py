"""The trial budget that workers sharing one study count together, and the trials of workers
that died: which trials use up the budget, which were surplus, and failing a dead worker's."""

from __future__ import annotations

from steps.lib.process_identity import Worker

WORKER_ATTR = "tabtune.worker"  # trial attribute: the worker (host:pid) that ran it
SURPLUS_ATTR = "tabtune.surplus"  # trial attribute: asked for after the budget was used up


def counted_trials(study) -> list:
    """Trials that use up the budget: finished or still running, never failed or surplus."""
    from optuna.trial import TrialState

    return [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED,
                                                                  TrialState.RUNNING))
            if not t.user_attrs.get(SURPLUS_ATTR)]


class SharedBudget:
    """The study-wide trial budget of workers sharing one study. Optuna's `n_trials` counts per
    process; here the first `trials` counted trials by number win, so concurrent workers never
    overshoot the total, and each trial records the worker that ran it. One read of the study's
    trials per trial (in `claim`), on the hot path of every worker."""

    def __init__(self, study, trials: int, worker: Worker):
        self.study = study
        self.trials = trials
        self.worker = str(worker)
        self._counted_at_claim = 0

    def claim(self, trial) -> bool:
        """Record this worker on `trial`; False (and the trial marked surplus) when the budget
        was already used up by other workers."""
        trial.set_user_attr(WORKER_ATTR, self.worker)
        numbers = sorted(t.number for t in counted_trials(self.study))
        self._counted_at_claim = len(numbers)
        if trial.number in numbers[: self.trials]:
            return True
        trial.set_user_attr(SURPLUS_ATTR, True)
        return False

    def used_up(self) -> bool:
        """Whether every slot was taken when this worker last claimed one (no new read: if other
        workers took the last slots since, the next claim finds out and stops the loop)."""
        return self._counted_at_claim >= self.trials


def is_surplus(frozen_trial) -> bool:
    return bool(frozen_trial.user_attrs.get(SURPLUS_ATTR))


def is_idle(study) -> bool:
    """No trial of the study is running: whoever sees this last may write the summary."""
    from optuna.trial import TrialState

    return not study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))


UNCLAIMED_AFTER_S = 60  # a RUNNING trial no worker claimed within this long was asked by a process that died


def fail_dead_workers_trials(study) -> list[int]:
    """Mark FAILED the RUNNING trials of workers that died on this host, and those no worker
    claimed within UNCLAIMED_AFTER_S (asked by a process killed before it could claim them: a
    live worker claims its trial right after asking); their trial numbers. (Other hosts' dead
    workers are failed by the database heartbeat.)"""
    import datetime

    now = datetime.datetime.now()

    def dead(trial) -> bool:
        worker = Worker.parse(trial.user_attrs.get(WORKER_ATTR, ""))
        if worker is None:
            started = trial.datetime_start
            return started is not None and (now - started).total_seconds() > UNCLAIMED_AFTER_S
        return worker.is_dead_here()

    return _fail_running(study, dead)


def fail_own_trials(study, worker: Worker) -> list[int]:
    """Mark FAILED the RUNNING trials of `worker` (this process, interrupted) and any trial it
    asked but had not claimed yet, so a rerun neither waits for them nor counts them against
    the budget. (A trial another live worker asked in the same instant and not yet claimed is
    failed too: it then ends failed, and the budget gives its slot to a new trial.)"""
    return _fail_running(study, lambda trial: trial.user_attrs.get(WORKER_ATTR) in (None, str(worker)))


def _fail_running(study, should_fail) -> list[int]:
    from optuna.trial import TrialState

    failed = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if should_fail(trial):
            try:
                study._storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL)
                failed.append(trial.number)
            except Exception:  # noqa: BLE001 - another worker failed it first
                pass
    return failed
