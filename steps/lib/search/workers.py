"""The tuning workflow shared by every worker of one Optuna study: one study is one MLflow
tuning run, and each trial is one child run of it, whichever worker ran it.

Two calls make the workflow: `join` (open or create the study, choose this worker's sampler
seed, find the tuning run its trials belong to — or take the study over when that run was
killed, failed or its process died — and reap: fail the trials and child runs of workers that
died) and `finish` (reap what died meanwhile; the study's summary if no trial is still running,
for the step to log on the study's tuning run). A study in memory is the one-worker case of the
same workflow."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from steps.lib import names, tracking
from steps.lib.errors import InputError
from steps.lib.process_identity import Worker
from steps.lib.search import sampling, studies
from steps.lib.search.budget import (
    WORKER_ATTR,
    SharedBudget,
    fail_dead_workers_trials,
    fail_own_trials,
    is_idle,
    is_surplus,
)
from steps.lib.search.storage import open_storage


@dataclass
class Membership:
    """This worker's place in a study: the study, the tuning run its trials are logged under,
    and the trials the database heartbeat found abandoned (filled by the storage)."""

    study: object
    tuning_run_id: str
    shared: bool
    budget: SharedBudget | None
    stale: set[int] = field(default_factory=set)


def default_study_name(family: str, data_run_id: str, iterations: int, settings: dict) -> str:
    """The family, data run and trial size, readable, and a digest of every setting that
    defines the study's trials (`settings`)."""
    return f"tabtune-{family}-{data_run_id}-it{iterations}-{studies.settings_digest(settings)}"


def join(*, family: str, storage: str, study_name: str, trials: int, seed: int, n_jobs: int, pruner: str,
         pruning_steps: int, own_run_id: str, parent_run_id: str = "", settings: dict | None = None) -> Membership:
    """Open (or create) the study and attach this worker to its tuning run; its pruner judges a
    trial over `pruning_steps` steps (iterations, or folds in cross-validation). The worker that
    creates a shared study records its own run as the tuning run; the others nest their runs
    under it. Several samplers on one study get distinct seeds, and the constant liar, so they
    do not propose the same points. A shared study made under other `settings` is refused."""
    stale: set[int] = set()
    storage_obj = open_storage(storage, on_stale_trial=lambda study, trial: stale.add(trial.number))
    shared = storage_obj is not None
    study, created = studies.create_or_load(study_name, storage_obj, sampling.make_sampler(seed, parallel=False),
                                            sampling.make_pruner(pruner, pruning_steps))
    if shared and settings is not None:
        studies.check_settings(study, settings, created)
    worker = Worker.this()
    if shared or n_jobs > 1:
        sampler_seed = sampling.worker_seed(study, seed, worker) if shared else seed
        study.sampler = sampling.make_sampler(sampler_seed, parallel=True)
    tuning_run_id = _tuning_run(study, created, own_run_id, parent_run_id, shared, worker)
    if tuning_run_id != own_run_id:
        _mark_worker(own_run_id, tuning_run_id, names.worker_step(family))
    membership = Membership(study, tuning_run_id, shared, SharedBudget(study, trials, worker) if shared else None,
                            stale)
    reap(membership)  # what workers that died before this one joined left behind
    return membership


def reap(membership: Membership) -> list[int]:
    """Fail the trials (and child runs) of dead workers: by pid on this host, and those the
    database heartbeat reported stale. Run at start and end, never per trial; a no-op for a
    study in memory. Returns the trial numbers whose child runs were written."""
    if not membership.shared:
        return []
    import warnings

    import optuna
    from optuna.trial import TrialState

    study = membership.study
    fail_dead_workers_trials(study)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        optuna.storages.fail_stale_trials(study)
    # A surplus trial failed on purpose, never ran and has no child run: it is not a dead worker's.
    dead = set(membership.stale) | {
        t.number for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
        if not is_surplus(t)
        and (worker := Worker.parse(t.user_attrs.get(WORKER_ATTR, ""))) and worker.is_dead_here()
    }
    trials = {t.number: tracking.TrialRecord(t.number, t.params, t.user_attrs.get(WORKER_ATTR, ""),
                                             t.user_attrs.get(studies.METRICS_ATTR, {}), t.state.name.lower())
              for t in study.get_trials(deepcopy=False)}
    earlier = tuple(study.user_attrs.get(studies.EARLIER_RUNS_ATTR, ()))
    return tracking.end_orphaned_trial_runs(membership.tuning_run_id, trials, died=dead, earlier_runs=earlier)


def abandon(membership: Membership) -> None:
    """This worker was interrupted (SIGINT/SIGTERM): its running trial, and one it asked for but
    had not claimed, end FAILED in the study at once, so a rerun neither waits for them nor
    counts them against the budget. Best effort: the step is already on its way out."""
    if membership.shared:
        import contextlib

        with contextlib.suppress(Exception):
            fail_own_trials(membership.study, Worker.this())


def finish(membership: Membership, *, family: str, fixed: dict) -> studies.StudySummary | None:
    """Reap, then the study's summary if this worker is the last one running trials (None while
    other workers still run some: the last of them summarizes). The summary goes to the study's
    tuning run as recorded now: another run may have taken the study over meanwhile."""
    reap(membership)
    if membership.shared and not is_idle(membership.study):
        return None
    if membership.shared:
        membership.tuning_run_id = membership.study.user_attrs.get(studies.PARENT_RUN_ATTR) or membership.tuning_run_id
    return studies.summarize(membership.study, family, fixed)


def _tuning_run(study, created: bool, own_run_id: str, parent_run_id: str, shared: bool, worker: Worker) -> str:
    """The tuning run this worker's trials belong to: the explicit `parent_run_id`, else the run
    recorded in the study by the worker that created it (or took it over), else this step's own
    run. A recorded run that ended KILLED or FAILED, or whose process is gone from this host, is
    taken over by this step's run: a pipeline rerun after an interrupt continues the study under
    a run that can finish (refit reads only FINISHED tuning runs)."""
    if not shared:
        return parent_run_id or own_run_id
    if created:
        _record(study, parent_run_id or own_run_id, worker)
    recorded = study.user_attrs.get(studies.PARENT_RUN_ATTR)
    deadline = time.monotonic() + 30
    while not recorded and time.monotonic() < deadline:  # the creator records it right after creating
        time.sleep(0.5)
        recorded = study.user_attrs.get(studies.PARENT_RUN_ATTR)  # read from storage each time
    if not recorded:
        _record(study, parent_run_id or own_run_id, worker)
        recorded = parent_run_id or own_run_id
    if parent_run_id and recorded != parent_run_id:
        raise InputError("parent_run_id", f"study {study.study_name!r} belongs to tuning run {recorded}, "
                                          f"not {parent_run_id}")
    if not parent_run_id and recorded != own_run_id and (ended := _ended(study, recorded)):
        study.set_user_attr(studies.EARLIER_RUNS_ATTR, [*study.user_attrs.get(studies.EARLIER_RUNS_ATTR, ()), recorded])
        tracking.end_killed([recorded], "its process is gone")  # a run left RUNNING by SIGKILL or a crash
        _record(study, own_run_id, worker)
        print(f"study {study.study_name!r}: its tuning run {recorded} {ended}; run {own_run_id} takes it over "
              f"(its {len(study.get_trials(deepcopy=False))} earlier trials stay child runs of {recorded} and count "
              "in the summary)")
        return own_run_id
    return recorded


def _record(study, tuning_run_id: str, worker: Worker) -> None:
    study.set_user_attr(studies.PARENT_RUN_ATTR, tuning_run_id)
    study.set_user_attr(studies.OWNER_ATTR, str(worker))


def _ended(study, tuning_run_id: str) -> str:
    """How the study's recorded tuning run ended ('' while it runs or has FINISHED): KILLED or
    FAILED, gone from the tracking store, or RUNNING with its process gone from this host (killed
    by SIGKILL or a crash, so nothing marked it)."""
    status = tracking.run_status(tuning_run_id)
    if status in (None, "KILLED", "FAILED"):
        return f"ended {status}" if status else "is not in the tracking store"
    owner = Worker.parse(study.user_attrs.get(studies.OWNER_ATTR, ""))
    if status == "RUNNING" and owner is not None and owner.is_dead_here():
        return f"is RUNNING but its process ({owner}) is gone"
    return ""


def _mark_worker(own_run_id: str, tuning_run_id: str, worker_step: str) -> None:
    """A worker attached to another tuning run is shown under it, and is not itself a tuning
    run that refit could pick."""
    tags = {names.STEP_TAG: worker_step, names.TUNING_RUN_TAG: tuning_run_id}
    if names.PARENT_RUN_TAG not in tracking.run_tags(own_run_id):
        tags[names.PARENT_RUN_TAG] = tuning_run_id
    tracking.log_results(tags=tags, run_id=own_run_id)
