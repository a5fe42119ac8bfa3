"""tune: one model family tuned by Optuna TPE at a fixed iteration count, one child run per trial.

Reads: the prepare run `data_run_id` (or the latest one with default settings); optionally an
Optuna study in `storage` shared with other workers.
Writes: a run tagged tabtune.step=tune_<family> and tabtune.validation (holdout or cv; on the
holdout, tabtune.holdout_reshuffled: whether each trial had a split of its own), with one child
run per trial (every parameter including fixed ones; metrics val_rmse/val_mae/val_r2, fit_s,
trial_number; tags
tabtune.trial_state = complete | failed | pruned, tabtune.worker = host:pid). On the tuning run:
metric best_val_rmse, tags best_trial and best_<param>, `best.json` (what refit reads),
`trials.csv`, Optuna's plots. A worker joining a study created by another is nested under that
study's tuning run and tagged tabtune.step=tune_<family>.worker."""

from __future__ import annotations

import os
import time

import click

from steps.lib import names, options, process_identity, tracking
from steps.lib.errors import InputError
from steps.lib.families import Family, family_names, get_family
from steps.lib.orchestration import cli, lineage
from steps.lib.progress import Heartbeat
from steps.lib.search import sampling, studies, workers
from steps.lib.search.budget import counted_trials
from steps.lib.search.out_of_fold import log_out_of_fold
from steps.lib.search.tuning import FAILED, Validation, optimize
from steps.lib.secrets import mask_url


def run(*, family: str, data_run_id: str, trials: int, iterations: int, seed: int, timeout_s: float,
        storage: str = "", study_name: str = "", n_jobs: int = 1, pruner: str = "none",
        parent_run_id: str = "", thread_count: int = 0, tune_rows: int = 0, validation: str = "auto",
        folds: int = 5) -> str:
    """Run (or join) the study, logging each trial as it ends; returns this step's run ID."""
    tracking.tolerate_outages()  # a tracking server restarting mid-study: ~2 minutes, see tracking/runs.py
    # Never oversubscribe: the cores are shared among the trials running at once.
    model_family = _family(family, thread_count or max(1, (os.cpu_count() or 1) // n_jobs))
    step = names.tune_step(family)
    tags = {names.FAMILY_TAG: family, names.STUDY_STORAGE_TAG: mask_url(storage) or "memory"}
    with tracking.step_run(step, tags) as run_id:
        if parent_run_id:
            tracking.resolve_run(parent_run_id, "parent_run_id", (step,), allow_running=True)
        data_run_id = lineage.data_run(data_run_id)
        splits = lineage.load_splits(data_run_id)
        scoring = Validation.for_splits(validation, folds, splits)
        tracking.set_tags({names.VALIDATION_TAG: scoring.name,
                           **({} if scoring.folds else {names.RESHUFFLED_TAG: str(scoring.reshuffle).lower()})})
        _check_pruner(model_family, pruner, scoring)
        # Sampled with the data's own seed: every worker of a shared study tunes on the same rows.
        splits = splits.with_train_sample(tune_rows, splits.seed)
        tracking.log_results(metrics={"tune_rows": len(splits.train)})  # what the trials were fitted on
        settings = study_settings(model_family, data_run_id, iterations, scoring, tune_rows, pruner)
        name = study_name or workers.default_study_name(family, data_run_id, iterations, settings)
        member = workers.join(family=family, storage=storage, study_name=name, trials=trials, seed=seed,
                              n_jobs=n_jobs, pruner=pruner, pruning_steps=scoring.folds or iterations,
                              own_run_id=run_id, parent_run_id=parent_run_id, settings=settings)
        carried = 0
        if not member.shared and not parent_run_id:  # an in-memory study: continue an interrupted one
            source, trial_runs = tracking.interrupted_study_trials(step, name, run_id)
            carried = studies.carry_over(member.study, model_family.space, trial_runs)
            if carried:
                print(f"{step}: carried over {carried} finished trials of interrupted run {source} "
                      f"(study {name!r}); {max(trials - carried, 0)} left to run", flush=True)
            tracking.log_results(metrics={"trials_carried_over": carried})
        if member.budget is not None and (held := len(counted_trials(member.study))) >= trials:
            print(f"{step}: study {name!r} already holds {held} of its {trials} trials: no trial left to run; "
                  "its best so far is the result (more trials: raise trials)")
        tracking.set_tags({names.DATA_RUN_TAG: data_run_id, names.STUDY_NAME_TAG: name})
        started = time.perf_counter()
        done, out_of_fold, running = 0, {}, {}
        with tracking.trial_runs(member.tuning_run_id, tags={names.WORKER_TAG: str(process_identity.Worker.this())},
                                 params={"family": family, "seed": seed}) as trial_runs, \
                Heartbeat(step, lambda: _running_trials(running, done, trials)) as heartbeat:

            def on_start(number: int) -> None:
                running[number] = time.perf_counter()
                trial_runs.started(number)

            def on_trial(result) -> None:
                nonlocal done
                done += 1
                running.pop(result.number, None)
                if result.out_of_fold is not None:
                    out_of_fold[f"trial_{result.number}"] = (result.params, result.out_of_fold)
                trial_runs.finished(result.number, params=result.params,
                                    metrics={**result.metrics, "fit_s": result.fit_s}, state=result.state,
                                    failed=result.state == FAILED, error=result.error, finished_at=result.finished)
                print(f"{step}: trial #{result.number} ({done}/{trials}) {result.state}"
                      f" val_rmse={result.value:.4f} fit={result.fit_s:.2f}s"
                      f" elapsed={time.perf_counter() - started:.0f}s", flush=True)
                heartbeat.said()

            try:
                optimize(model_family, splits, study=member.study, trials=max(trials - carried, 0),
                         iterations=iterations, seed=seed,
                         timeout_s=timeout_s, n_jobs=n_jobs, prune=pruner != "none", budget=member.budget,
                         validation=scoring, on_start=on_start, on_trial=on_trial)
            except KeyboardInterrupt:
                workers.abandon(member)
                raise
        if out_of_fold:  # this worker's trials, on its own run
            log_out_of_fold(splits, family, out_of_fold)
        summary = workers.finish(member, family=family, fixed=model_family.fixed_params(iterations=iterations))
        if summary is None:
            print(f"{step}: other workers still run trials of {name!r}; the last one writes the summary")
        else:
            log_summary(summary, member.study, member.tuning_run_id)
            print(f"{step}: best trial #{summary.best['trial']} val_rmse={summary.best['val_rmse']:.4f};"
                  f" tuning run {member.tuning_run_id}")
        return run_id


def _running_trials(running: dict[int, float], done: int, trials: int) -> str:
    """What a heartbeat says while trials run: which, and for how long (a trial on a big table,
    or cross-validated, can take minutes)."""
    now, since = time.perf_counter(), sorted(dict(running).items())  # a copy: trials start and end meanwhile
    if not since:
        return ""
    # never "trial #N ": that is how each finished trial's own line reads
    running_now = ", ".join(f"#{number} ({now - at:.0f}s)" for number, at in since)
    return f"still running {running_now}; {done}/{trials} trials done"


def study_settings(family: Family, data_run_id: str, iterations: int, validation: Validation, tune_rows: int,
                   pruner: str) -> dict:
    """What defines a study's trials, so that no step joins a study made under other settings:
    the family and its fixed parameters, the data run and the rows tuned on, how trials are
    scored, the pruner, and the code of this step (which holds the search space). Not the seed
    (the workers of one study run with different seeds) nor `trials` (raising it continues a study)."""
    from steps.lib.orchestration.step_cache import step_code_digest

    return {"family": family.name, "fixed": family.fixed_params(iterations=iterations), "data_run_id": data_run_id,
            "tune_rows": tune_rows, "validation": validation.name, "folds": validation.folds,
            "reshuffle": validation.reshuffle, "pruner": pruner,
            "code": step_code_digest(names.TUNE)}


def log_summary(summary: studies.StudySummary, study, tuning_run_id: str) -> None:
    """The study's summary on its tuning run; idempotent, so whichever worker finishes last may
    (re)write it."""
    from steps.lib.model import plots

    tracking.log_results(metrics=summary.metrics, tags=summary.tags, run_id=tuning_run_id)
    tracking.log_json(summary.best, names.BEST_FILE, run_id=tuning_run_id)
    tracking.log_table(summary.trials, names.TRIALS_FILE, run_id=tuning_run_id)
    for file_name, figure in plots.optuna_figures(study).items():
        tracking.log_figure(figure, f"{names.PLOTS_DIR}/{file_name}", run_id=tuning_run_id)


def _family(name: str, thread_count: int) -> Family:
    """The family to tune, refused when it is unknown."""
    try:
        return get_family(name, thread_count=thread_count)
    except KeyError:
        raise InputError("family", f"unknown model family {name!r}; known: {', '.join(family_names())}") from None


def _check_pruner(family: Family, pruner: str, validation: Validation) -> None:
    """Refuses a pruner the family cannot be pruned by: one that reports no progress while fitting
    can still be pruned between folds, not on one holdout split."""
    if pruner != "none" and not validation.folds and type(family).fit_options is Family.fit_options:
        raise InputError("pruner", f"{family.name} reports no progress while fitting, so it cannot be pruned with "
                                   f"validation={validation.name}; use pruner=none or validation=cv")


OPTIONS = [
    options.DATA_RUN_ID,
    click.Option(["--trials"], type=options.Whole(min=1), default=50, show_default=True,
                 help="Total trials of the study, across all workers."),
    click.Option(["--iterations"], type=options.Whole(min=1), default=500, show_default=True,
                 help="Boosting iterations per trial (fixed while tuning)."),
    options.SEED,
    click.Option(["--timeout-s"], type=click.FloatRange(min=0), default=0, show_default=True,
                 help="Stop starting new trials after this many seconds (0 = no limit)."),
    click.Option(["--storage"], default="",
                 help="Optuna storage: a database URL, journal:PATH or env:VAR ('' = in memory)."),
    click.Option(["--study-name"], default="",
                 help="Default: derived from the family, data run, iterations and what defines the trials."),
    click.Option(["--n-jobs"], type=options.Whole(min=1, max=64), default=1, show_default=True,
                 help="Trials run at once in this process, sharing its cores."),
    click.Option(["--pruner"], type=click.Choice(sampling.PRUNERS), default="none", show_default=True,
                 help="Stop unpromising trials early (families that report progress while fitting)."),
    options.StepOnly(["--parent-run-id"], default="", help="Attach this worker's trials to this tuning run."),
    options.TUNE_ROWS,
    options.VALIDATION,
    options.FOLDS,
    options.StepOnly(["--thread-count"], type=options.Whole(min=0, max=256), default=0, show_default=True,
                 help="Threads per fit (0 = cores / n_jobs)."),
]

# Any registered family name is accepted here; an unknown one gets the error naming `family`.
command = click.Command(names.TUNE, params=[options.StepOnly(["--family"], default="catboost", show_default=True,
                                                         help="The model family to tune."),
                                            *OPTIONS], callback=run)


def family_command(family: str) -> click.Command:
    """The tuning command of one family (e.g. tune_catboost): every option but --family."""
    return click.Command(names.tune_step(family), params=list(OPTIONS),
                         callback=lambda **values: run(family=family, **values))


if __name__ == "__main__":
    cli.main(command, names.TUNE)
