"""Search loops: a grid for LASSO, Optuna TPE for the rest. Each evaluation is reported
through `on_trial`, so the step (not this module) decides what to log."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from steps.lib.data import Splits
from steps.lib.training import fit_and_score

COMPLETE, FAILED, PRUNED = "complete", "failed", "pruned"


@dataclass(frozen=True)
class TrialResult:
    """One evaluated point of a search, in the shape a child run is logged from."""

    number: int
    params: dict[str, Any]
    state: str
    metrics: dict[str, float] = field(default_factory=dict)
    fit_s: float = 0.0
    started: datetime | None = None
    finished: datetime | None = None
    error: str = ""

    @property
    def value(self) -> float:
        return self.metrics.get("val_rmse", math.inf) if self.state == COMPLETE else math.inf


def evaluate_grid(
    family, grid: list[dict[str, Any]], splits: Splits, *, seed: int,
    on_trial: Callable[[TrialResult], None] = lambda result: None,
) -> list[TrialResult]:
    """Every grid point fit on train and scored on val, in grid order."""
    results = []
    for number, params in enumerate(grid):
        started = datetime.now()
        fitted = fit_and_score(family, params, splits, seed)
        result = TrialResult(
            number, params, COMPLETE, fitted.metrics, fitted.fit_s, started, datetime.now()
        )
        on_trial(result)
        results.append(result)
    return results


def best_result(results: list[TrialResult]) -> TrialResult:
    """The complete result with the lowest val RMSE (first one on ties)."""
    complete = [r for r in results if r.state == COMPLETE]
    if not complete:
        raise RuntimeError("no trial completed")
    return min(complete, key=lambda r: r.value)


def optimize(
    family, splits: Splits, *, trials: int, iterations: int, seed: int, timeout_s: float = 0,
    on_trial: Callable[[TrialResult], None] = lambda result: None,
):
    """An Optuna TPE study over `family.space`, seeded so a rerun proposes the same points."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    fixed = family.fixed_params(iterations=iterations)
    outcomes: dict[int, tuple[dict, float, str]] = {}

    def objective(trial: optuna.Trial) -> float:
        params = {**family.space(trial), **fixed}
        try:
            fitted = fit_and_score(family, params, splits, seed)
        except Exception as error:
            outcomes[trial.number] = ({}, 0.0, f"{type(error).__name__}: {error}")
            raise
        outcomes[trial.number] = (fitted.metrics, fitted.fit_s, "")
        return fitted.metrics["val_rmse"]

    def report(study: optuna.Study, frozen: optuna.trial.FrozenTrial) -> None:
        metrics, fit_s, error = outcomes.pop(frozen.number, ({}, 0.0, ""))
        state = {
            optuna.trial.TrialState.COMPLETE: COMPLETE,
            optuna.trial.TrialState.PRUNED: PRUNED,
        }.get(frozen.state, FAILED)
        on_trial(
            TrialResult(
                frozen.number, {**frozen.params, **fixed}, state, metrics, fit_s,
                frozen.datetime_start, frozen.datetime_complete, error,
            )
        )

    study = optuna.create_study(direction="minimize", sampler=optuna.samplers.TPESampler(seed=seed))
    study.optimize(
        objective,
        n_trials=trials,
        timeout=timeout_s or None,
        callbacks=[report],
        catch=(Exception,),
        gc_after_trial=False,
    )
    return study
