"""The tuning workflow shared by every worker of one Optuna study: one study is one MLflow
tuning run, and each trial is one child run of it, whichever worker ran it.

Three calls make the workflow: `join` (open or create the study, choose this worker's sampler
seed, find the tuning run its trials belong to), `reap` (fail the trials and child runs of
workers that died), `finish` (reap again; the study's summary if no trial is still running,
for the step to log). A study in memory is the one-worker case of the same workflow."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from steps.lib import names, sampling, studies, tracking
from steps.lib.budget import WORKER_ATTR, SharedBudget, fail_dead_workers_trials, is_idle, is_surplus
from steps.lib.errors import InputError
from steps.lib.process_identity import Worker
from steps.lib.storage import open_storage


@dataclass
class Membership:
    """This worker's place in a study: the study, the tuning run its trials are logged under,
    and the trials the database heartbeat found abandoned (filled by the storage)."""

    study: object
    tuning_run_id: str
    shared: bool
    budget: SharedBudget | None
    stale: set[int] = field(default_factory=set)


def default_study_name(family: str, data_run_id: str, iterations: int) -> str:
    return f"tabtune-{family}-{data_run_id}-it{iterations}"


def join(*, family: str, storage: str, study_name: str, trials: int, seed: int, n_jobs: int, pruner: str,
         iterations: int, own_run_id: str, parent_run_id: str = "") -> Membership:
    """Open (or create) the study and attach this worker to its tuning run. The worker that
    creates a shared study records its own run as the tuning run; the others nest their runs
    under it. Several samplers on one study get distinct seeds, and the constant liar, so they
    do not propose the same points."""
    stale: set[int] = set()
    storage_obj = open_storage(storage, on_stale_trial=lambda study, trial: stale.add(trial.number))
    shared = storage_obj is not None
    study, created = studies.create_or_load(study_name, storage_obj, sampling.make_sampler(seed, parallel=False),
                                            sampling.make_pruner(pruner, iterations))
    worker = Worker.this()
    if shared or n_jobs > 1:
        sampler_seed = sampling.worker_seed(study, seed, worker) if shared else seed
        study.sampler = sampling.make_sampler(sampler_seed, parallel=True)
    tuning_run_id = _tuning_run(study, created, own_run_id, parent_run_id, shared)
    if tuning_run_id != own_run_id:
        _mark_worker(own_run_id, tuning_run_id, names.worker_step(family))
    budget = SharedBudget(study, trials, worker) if shared else None
    return Membership(study, tuning_run_id, shared, budget, stale)


def reap(membership: Membership) -> list[int]:
    """Fail the trials (and child runs) of dead workers: by pid on this host, and those the
    database heartbeat reported stale. Run at start and end, never per trial; a no-op for a
    study in memory. Returns the trial numbers whose child runs were failed."""
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
    writer = tracking.ChildRunWriter(membership.tuning_run_id)
    return _fail_orphan_child_runs(study, writer, dead) + _end_finished_trials_children(study, writer)


def finish(membership: Membership, *, family: str, fixed: dict) -> studies.StudySummary | None:
    """Reap, then the study's summary if this worker is the last one running trials (None while
    other workers still run some: the last of them summarizes)."""
    reap(membership)
    if membership.shared and not is_idle(membership.study):
        return None
    return studies.summarize(membership.study, family, fixed)


def _tuning_run(study, created: bool, own_run_id: str, parent_run_id: str, shared: bool) -> str:
    """The tuning run this worker's trials belong to: the explicit `parent_run_id`, else the run
    recorded in the study by the worker that created it, else this step's own run."""
    if not shared:
        return parent_run_id or own_run_id
    if created:
        study.set_user_attr(studies.PARENT_RUN_ATTR, parent_run_id or own_run_id)
    recorded = study.user_attrs.get(studies.PARENT_RUN_ATTR)
    deadline = time.monotonic() + 30
    while not recorded and time.monotonic() < deadline:  # the creator records it right after creating
        time.sleep(0.5)
        recorded = study.user_attrs.get(studies.PARENT_RUN_ATTR)  # read from storage each time
    if not recorded:
        study.set_user_attr(studies.PARENT_RUN_ATTR, parent_run_id or own_run_id)
        recorded = parent_run_id or own_run_id
    if parent_run_id and recorded != parent_run_id:
        raise InputError("parent_run_id", f"study {study.study_name!r} belongs to tuning run {recorded}, "
                                          f"not {parent_run_id}")
    return recorded


def _mark_worker(own_run_id: str, tuning_run_id: str, worker_step: str) -> None:
    """A worker attached to another tuning run is shown under it, and is not itself a tuning
    run that refit could pick."""
    tags = {names.STEP_TAG: worker_step, names.TUNING_RUN_TAG: tuning_run_id}
    if names.PARENT_RUN_TAG not in tracking.run_tags(own_run_id):
        tags[names.PARENT_RUN_TAG] = tuning_run_id
    tracking.log_results(tags=tags, run_id=own_run_id)


def _fail_orphan_child_runs(study, writer: tracking.ChildRunWriter, dead: set[int]) -> list[int]:
    """Trials whose worker died get a FAILED child run with their parameters: the RUNNING one
    the worker created, or a new one if it died before creating it (its writer is dead, so this
    is never a duplicate). Only trials known dead are touched: a RUNNING child of a finished
    trial may just be a live worker about to write it."""
    if not dead:
        return []
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    failed = []
    running = {run.data.tags.get(names.TRIAL_NUMBER_TAG, ""): run.info.run_id for run in writer.running_children()}
    for number in sorted(dead):
        trial = trials.get(number)
        if trial is None:
            continue
        run_id = running.get(str(number))
        if run_id is None:
            if writer.has_child(names.TRIAL_NUMBER_TAG, str(number)):
                continue  # already ended
            run_id = writer.start(trial_run_name(number), {
                names.TRIAL_NUMBER_TAG: str(number),
                names.WORKER_TAG: trial.user_attrs.get(WORKER_ATTR, "")})
        writer.finish(run_id, params=trial.params, metrics={"trial_number": trial.number},
                      tags={names.TRIAL_STATE_TAG: "failed",
                            names.ERROR_TAG: "the worker running this trial died"}, failed=True)
        failed.append(trial.number)
    return failed


def _end_finished_trials_children(study, writer: tracking.ChildRunWriter) -> list[int]:
    """Child runs left RUNNING although their trial finished, because their worker died between
    the trial's end and writing it (its background writer had not sent the last call): written
    now from the study, FINISHED. Only for workers dead on this host; a live worker may still be
    about to write them. Returns their trial numbers."""
    from optuna.trial import TrialState

    trials = {t.number: t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))}
    ended = []
    for run in writer.running_children():
        number = run.data.tags.get(names.TRIAL_NUMBER_TAG, "")
        trial = trials.get(int(number)) if number.isdigit() else None
        worker = Worker.parse(run.data.tags.get(names.WORKER_TAG, ""))
        if trial is None or worker is None or not worker.is_dead_here():
            continue
        state = "complete" if trial.state == TrialState.COMPLETE else "pruned"
        writer.finish(run.info.run_id, params=trial.params,
                      metrics={**trial.user_attrs.get(studies.METRICS_ATTR, {}), "trial_number": trial.number},
                      tags={names.TRIAL_STATE_TAG: state}, failed=False)
        ended.append(trial.number)
    return ended


def trial_run_name(number: int) -> str:
    return f"trial-{number:03d}"
