"""How an Optuna study maps onto MLflow runs: one tuning run per study (recorded in the study),
one child run per trial, FAILED child runs for trials whose worker died, and the study summary
on the tuning run. Shared by every worker of a study."""

from __future__ import annotations

import time

from steps.lib import names, studies, tracking
from steps.lib.errors import InputError



def attach(study, created: bool, own_run_id: str, parent_run_id: str, shared: bool) -> str:
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


def mark_worker(own_run_id: str, tuning_run_id: str, has_parent: bool) -> None:
    """A worker attached to another tuning run is shown under it, and is not itself a tuning
    run that refit could pick."""
    tags = {names.STEP_TAG: names.TUNE_WORKER, names.TUNING_RUN_TAG: tuning_run_id}
    if not has_parent:
        tags["mlflow.parentRunId"] = tuning_run_id
    tracking.log_results(tags=tags, run_id=own_run_id)


def fail_orphan_child_runs(study, writer: tracking.ChildRunWriter, dead: set[int]) -> list[int]:
    """Trials whose worker died get a FAILED child run with their parameters: the RUNNING one
    the worker created, or a new one if it died before creating it (its writer is dead, so this
    is never a duplicate); returns their trial numbers. Only trials known dead are touched: a
    RUNNING child of a finished trial may just be a live worker about to write it."""
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
            run_id = writer.start(f"trial-{number:03d}", {names.TRIAL_NUMBER_TAG: str(number),
                                                          studies.WORKER_ATTR: trial.user_attrs.get(studies.WORKER_ATTR, "")})
        writer.finish(run_id, params=trial.params, metrics={"trial_number": trial.number},
                      tags={names.TRIAL_STATE_TAG: "failed",
                            names.ERROR_TAG: "the worker running this trial died"}, failed=True)
        failed.append(trial.number)
    return failed


def reap(study, writer: tracking.ChildRunWriter, stale: set[int]) -> list[int]:
    """Fail the trials (and child runs) of dead workers: by pid on this host, and those the
    database heartbeat reported stale (`stale`, filled by the storage's callback). Run at start
    and end, never per trial."""
    import warnings

    import optuna
    from optuna.trial import TrialState

    studies.fail_dead_workers_trials(study)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        optuna.storages.fail_stale_trials(study)
    dead = set(stale) | {
        t.number for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
        if (worker := studies.Worker.parse(t.user_attrs.get(studies.WORKER_ATTR, ""))) and worker.is_dead_here()
    }
    return fail_orphan_child_runs(study, writer, dead)


def is_idle(study) -> bool:
    from optuna.trial import TrialState

    return not study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))


def summarize(study, fixed: dict, tuning_run_id: str) -> dict:
    """Best trial, counts, trials table and plots on the tuning run; idempotent, so whichever
    worker finishes last may (re)write it. Returns best.json's content."""
    from optuna.trial import TrialState

    from steps.lib import plots

    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        raise InputError("trials", f"no trial of study {study.study_name!r} completed")
    best = study.best_trial  # COMPLETE trials only: a pruned trial is never best
    metrics = best.user_attrs.get(studies.METRICS_ATTR, {})
    counts = {state.name.lower(): len(study.get_trials(deepcopy=False, states=(state,)))
              for state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)}
    summary = {"family": "catboost", "params": {**best.params, **fixed}, "val_rmse": best.value,
               "trial": best.number, "study_name": study.study_name}
    tracking.log_results(
        metrics={"best_val_rmse": best.value, "best_val_mae": metrics.get("val_mae", float("nan")),
                 "best_val_r2": metrics.get("val_r2", float("nan")),
                 **{f"trials_{state}": n for state, n in counts.items()}},
        tags={"best_trial": best.number, **{f"best_{k}": v for k, v in best.params.items()}},
        run_id=tuning_run_id,
    )
    tracking.log_json(summary, names.BEST_FILE, run_id=tuning_run_id)
    tracking.log_table(study.trials_dataframe(), names.TRIALS_FILE, run_id=tuning_run_id)
    for file_name, figure in plots.optuna_figures(study).items():
        tracking.log_figure(figure, f"{names.PLOTS_DIR}/{file_name}", run_id=tuning_run_id)
    return summary
