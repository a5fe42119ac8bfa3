"""One Optuna study: created once (by whichever worker gets there first) or loaded, and
summarized from its storage alone, so that whichever worker finishes last writes the same
summary."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass

from steps.lib import names
from steps.lib.errors import InputError

SETTINGS_ATTR = "tabtune.settings"  # study attribute: what defines its trials (see settings_digest)
PARENT_RUN_ATTR = "tabtune.mlflow_run_id"  # study attribute: the tuning run its trials are logged under
OWNER_ATTR = "tabtune.tuning_worker"  # study attribute: host:pid of the process that runs that tuning run
EARLIER_RUNS_ATTR = "tabtune.earlier_tuning_runs"  # study attribute: tuning runs it had before a takeover
METRICS_ATTR = "tabtune.metrics"  # trial attribute: its val metrics and fit time
CARRIED_ATTR = "tabtune.carried_from"  # trial attribute: the child run of an interrupted study it came from


def create_or_load(name: str, storage, sampler, pruner):
    """The study and whether this call created it (exactly one worker does, even in a race)."""
    import optuna

    if storage is None:
        return optuna.create_study(study_name=name, direction="minimize", sampler=sampler, pruner=pruner), True
    try:
        study = optuna.create_study(study_name=name, storage=storage, direction="minimize", sampler=sampler,
                                    pruner=pruner)
        return study, True
    except optuna.exceptions.DuplicatedStudyError:
        return optuna.load_study(study_name=name, storage=storage, sampler=sampler, pruner=pruner), False


def settings_digest(settings: dict) -> str:
    """A short hash of the settings that define a study's trials: the default study name carries
    it, so a change to any of them starts another study instead of joining a full one."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:8]


def check_settings(study, settings: dict, created: bool) -> None:
    """Record the settings on a study this worker created; refuse to join one made under other
    settings (its trials would be ranked with, and counted against the budget of, trials of
    another search), naming the first setting that differs and the way out."""
    settings = json.loads(json.dumps(settings, default=str))  # as the storage gives them back
    if created:
        study.set_user_attr(SETTINGS_ATTR, settings)
        return
    recorded = study.user_attrs.get(SETTINGS_ATTR)
    deadline = time.monotonic() + 30
    while recorded is None and not study.get_trials(deepcopy=False) and time.monotonic() < deadline:
        time.sleep(0.5)  # its creator records them right after creating it
        recorded = study.user_attrs.get(SETTINGS_ATTR)
    if recorded is None:
        raise InputError("study_name", f"study {study.study_name!r} records no settings (made by an earlier "
                                       "tabtune), so its trials may come from another search; use another "
                                       "study_name")
    differing = [key for key in sorted(settings.keys() | recorded.keys()) if recorded.get(key) != settings.get(key)]
    if differing:
        key = differing[0]
        raise InputError("study_name", f"study {study.study_name!r} was made with {key}={recorded.get(key)!r}, "
                                       f"not {settings.get(key)!r}: use another study_name (left empty, the "
                                       "name follows these settings)")


def carry_over(study, space, trial_runs: list) -> int:
    """Add to `study` the finished trials an interrupted in-memory study had logged as child runs
    (complete or pruned, their parameters typed back through the search space `space`, a
    family's `space(trial)`), so a rerun continues the search instead of starting at trial 0.
    A trial whose parameters the space no longer takes is left out. Returns how many were added."""
    import warnings

    import optuna

    added = 0
    for run in sorted(trial_runs, key=lambda r: int(float(r.data.metrics.get("trial_number", 0)))):
        state = run.data.tags.get(names.TRIAL_STATE_TAG)
        value = run.data.metrics.get("val_rmse")
        if state not in ("complete", "pruned") or (state == "complete" and value is None):
            continue
        metrics = {key: value for key, value in run.data.metrics.items() if key.startswith("val_") or key == "fit_s"}
        fixed = optuna.trial.FixedTrial({key: _typed(text) for key, text in run.data.params.items()})
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # a value outside the space: create_trial refuses it
                space(fixed)
            trial = optuna.trial.create_trial(
                params=fixed.params, distributions=fixed.distributions,
                value=value if state == "complete" else None,
                state=optuna.trial.TrialState.COMPLETE if state == "complete" else optuna.trial.TrialState.PRUNED,
                user_attrs={METRICS_ATTR: metrics, CARRIED_ATTR: run.info.run_id})
        except Exception:  # noqa: BLE001 - the space changed since: not this search's trial
            continue
        study.add_trial(trial)
        added += 1
    return added


def _typed(text: str):
    """A run parameter (always text) as the number or word it was."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


@dataclass(frozen=True)
class StudySummary:
    """What a finished study says: its best complete trial, the counts per state, the trials."""

    best: dict  # best.json: family, params (tuned + fixed), val_rmse, trial, study_name
    metrics: dict[str, float]
    tags: dict[str, str]
    trials: object  # the study's trials as a DataFrame


def summarize(study, family: str, fixed: dict) -> StudySummary:
    """The study's summary, computed from the storage alone, so whichever worker finishes last
    computes the same one."""
    from optuna.trial import TrialState

    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        raise InputError("trials", f"no trial of study {study.study_name!r} completed")
    best = study.best_trial  # COMPLETE trials only: a pruned trial is never best
    metrics = best.user_attrs.get(METRICS_ATTR, {})
    counts = {state.name.lower(): len(study.get_trials(deepcopy=False, states=(state,)))
              for state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)}
    return StudySummary(
        best={"family": family, "params": {**best.params, **fixed}, "val_rmse": best.value,
              "trial": best.number, "study_name": study.study_name},
        metrics={"best_val_rmse": best.value, "best_val_mae": metrics.get("val_mae", float("nan")),
                 "best_val_r2": metrics.get("val_r2", float("nan")),
                 **{f"trials_{state}": n for state, n in counts.items()}},
        tags={"best_trial": str(best.number), **{f"best_{k}": str(v) for k, v in best.params.items()}},
        trials=study.trials_dataframe(),
    )
