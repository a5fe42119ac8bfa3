"""One Optuna study: created once (by whichever worker gets there first) or loaded, and
summarized from its storage alone, so that whichever worker finishes last writes the same
summary."""

from __future__ import annotations

from dataclasses import dataclass

from steps.lib.errors import InputError

PARENT_RUN_ATTR = "tabtune.mlflow_run_id"  # study attribute: the tuning run its trials are logged under
METRICS_ATTR = "tabtune.metrics"  # trial attribute: its val metrics and fit time


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
