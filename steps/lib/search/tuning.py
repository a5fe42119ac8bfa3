"""Search loops: a grid for LASSO (tune_lasso), Optuna TPE for any family. Each evaluation is reported
through `on_trial`, so the step (not this module) decides what to log."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from steps.lib.data.tables import Splits
from steps.lib.model.training import cross_validate, fit_and_score
from steps.lib.options import (
    AUTO,
    AUTO_CV_FINAL_MAX_CELLS,
    AUTO_CV_FINAL_MAX_ROWS,
    AUTO_CV_MAX_CELLS,
    AUTO_CV_MAX_ROWS,
    CV,
    HOLDOUT,
)
from steps.lib.search import studies
from steps.lib.search.budget import is_surplus

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
    # cross-validated: each train+val row's prediction by the fold model that did not see it
    out_of_fold: Any = field(default=None, repr=False, compare=False)

    @property
    def value(self) -> float:
        return self.metrics.get("val_rmse", math.inf) if self.state == COMPLETE else math.inf


@dataclass(frozen=True)
class Validation:
    """How a candidate is scored: fit on train and scored on val (`folds` 0: holdout, the
    tutorial's method), or fit on each of `folds` folds of train+val, early-stopped on and
    scored on the rows it left out, val_rmse being the mean (cv). A fold's fit stops after
    `early_stopping_rounds` iterations without improvement: refit's default, held fixed here so
    that changing refit's early stopping never reruns the tuning."""

    folds: int = 0
    early_stopping_rounds: int = 100
    # Refit on one holdout split: serve the equal-weight average of the chosen family's candidates
    # (each refit on train+val) instead of the one lowest on val.
    average_on_val: bool = False
    # Holdout tuning: each Optuna trial fitted and scored on its own seeded reshuffle of train+val
    # (Splits.reshuffled) instead of on the one val split every trial shares.
    reshuffle: bool = False

    @classmethod
    def of(cls, validation: str, folds: int, rows: int, features: int = 1, final: bool = False) -> Validation:
        """The `validation` setting for a table of `rows` train+val rows and `features` columns,
        for tuning or (`final`) for refit's choice of the final model: `auto` cross-validates
        small tables, where one val split is too few rows to rank candidates by, and keeps the
        holdout on large or wide ones, where one split is enough or k fits per candidate cost
        the most (ames' 2,344 x 79: up to 300 s a cross-validated trial). The final model is
        also cross-validated on tables too long, not too wide, for every trial to be (it weighs
        two candidates, not a study): measured to pay on diamonds' 43,152 rows, and not on ames'
        few rows, where each fold model's 20 % fewer rows cost more than the folds' choice buys.
        There, on a table kept on the holdout by its width, not its length, each trial is scored on
        its own reshuffle of train+val (one shared 586-row val split let ames' 50 trials fit its
        luck), and the final model is the plain average of the chosen family's candidates
        (`average_on_val`): ames' single val split ranks them no better than a coin, nor weighs
        them better than equal weights do (BENCHMARKS.md); longer tables keep the pick."""
        if validation == AUTO:
            cells = rows * features
            small = rows <= AUTO_CV_MAX_ROWS and cells <= AUTO_CV_MAX_CELLS
            long = AUTO_CV_MAX_ROWS < rows <= AUTO_CV_FINAL_MAX_ROWS and cells <= AUTO_CV_FINAL_MAX_CELLS
            held_out_for_width = rows <= AUTO_CV_FINAL_MAX_ROWS and not (small or long)
            if not (small or (final and long)):
                return cls(0, average_on_val=final and held_out_for_width, reshuffle=not final and held_out_for_width)
            validation = CV
        return cls(folds if validation == CV else 0)

    @classmethod
    def for_splits(cls, validation: str, folds: int, splits: Splits, final: bool = False) -> Validation:
        """`of` for the table these splits cut (train+val, before any tuning sample)."""
        return cls.of(validation, folds, rows=len(splits.train) + len(splits.val), features=len(splits.features),
                      final=final)

    @property
    def name(self) -> str:
        return CV if self.folds else HOLDOUT



class _Scorer:
    """Scores candidates of one family on one table as `validation` says, with each fit's data
    (a CatBoost Pool, say) built once for every candidate: the hot path only fits."""

    def __init__(self, family, splits: Splits, validation: Validation):
        self.family, self.splits, self.validation = family, splits, validation
        self.folds = splits.cv_folds(validation.folds) if validation.folds else []
        self._data = [family.fit_data(fold) for fold in self.folds] if self.folds else None

    @property
    def data(self):
        """The shared split's fit data, built when first scored on: a reshuffling study scores
        every trial on a split of its own and never needs it."""
        if self._data is None:
            self._data = self.family.fit_data(self.splits)
        return self._data

    def score(self, params: dict[str, Any], seed: int, on_iteration=None, after_fold=None, trial: int | None = None):
        """(metrics, fit_s, out-of-fold predictions or None) of one candidate; None when a
        reporter stopped it (pruned). `trial`: the Optuna trial number, whose own split a
        reshuffling holdout scores it on (its fit data built for it alone)."""
        if not self.folds:
            if self.validation.reshuffle and trial is not None:
                splits = self.splits.reshuffled(trial)
                data = self.family.fit_data(splits)
            else:
                splits, data = self.splits, self.data
            fitted = fit_and_score(self.family, params, splits, seed, on_iteration=on_iteration, data=data)
            return fitted.metrics, fitted.fit_s, None
        scored = cross_validate(self.family, params, self.folds, seed, data=self.data,
                                early_stopping_rounds=self.validation.early_stopping_rounds, after_fold=after_fold)
        return None if scored is None else (scored.metrics, scored.fit_s, scored.out_of_fold)


def evaluate_grid(
    family, grid: list[dict[str, Any]], splits: Splits, *, seed: int, validation: Validation = Validation(),
    on_trial: Callable[[TrialResult], None] = lambda result: None,
) -> list[TrialResult]:
    """Every grid point scored as `validation` says, in grid order."""
    results = []
    scorer = _Scorer(family, splits, validation)
    for number, params in enumerate(grid):
        started = datetime.now()
        metrics, fit_s, out_of_fold = scorer.score(params, seed)
        result = TrialResult(number, params, COMPLETE, metrics, fit_s, started, datetime.now(), out_of_fold=out_of_fold)
        on_trial(result)
        results.append(result)
    return results


def best_result(results: list[TrialResult]) -> TrialResult:
    """The complete result with the lowest val RMSE (first one on ties)."""
    complete = [r for r in results if r.state == COMPLETE]
    if not complete:
        raise RuntimeError("no trial completed")
    return min(complete, key=lambda r: r.value)


class _Surplus(Exception):
    """This trial was asked for after the study-wide budget was used up by other workers."""


def optimize(
    family, splits, *, study, trials: int, iterations: int, seed: int, timeout_s: float = 0,
    n_jobs: int = 1, prune: bool = False, budget=None, validation: Validation = Validation(),
    on_start: Callable[[int], None] = lambda number: None,
    on_trial: Callable[[TrialResult], None] = lambda result: None,
):
    """Run trials of `family.space` on `study` until it holds `trials` trials.

    budget: a `budget.SharedBudget` when other workers use the same study, so the total is
    counted across all of them. prune: the study's pruner may stop a trial early, from the val
    RMSE the family reports while it fits (holdout) or from the running mean after each fold
    (cv). `validation`: how each trial is scored. Each trial is announced (`on_start`) and reported
    (`on_trial`) from the thread that ran it."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    search = _Search(family, splits, trials=trials, iterations=iterations, seed=seed, prune=prune, budget=budget,
                     validation=validation, on_start=on_start, on_trial=on_trial)
    study.optimize(
        search.objective,
        n_trials=None if budget is not None else trials,
        timeout=timeout_s or None,
        n_jobs=n_jobs,
        callbacks=[search.report],
        catch=(Exception,),
        gc_after_trial=False,
    )
    return study


class _Search:
    """One worker's side of a study: the objective each trial runs (the hot path: claim a slot,
    fit, score) and the callback that reports each finished trial and stops the study once the
    budget is used up or every trial of this worker failed."""

    def __init__(self, family, splits, *, trials: int, iterations: int, seed: int, prune: bool, budget,
                 validation: Validation, on_start: Callable[[int], None], on_trial: Callable[[TrialResult], None]):
        self.family, self.trials, self.iterations, self.seed = family, trials, iterations, seed
        self.prune, self.budget, self.on_start, self.on_trial = prune, budget, on_start, on_trial
        self.fixed = family.fixed_params(iterations=iterations)
        self.scorer = _Scorer(family, splits, validation)
        # trial number -> metrics, fit_s, error, out-of-fold predictions
        self.outcomes: dict[int, tuple[dict, float, str, Any]] = {}
        self.own_failures: list[int] = []

    def objective(self, trial) -> float:
        if self.budget is not None and not self.budget.claim(trial):
            raise _Surplus()
        params = {**self.family.space(trial), **self.fixed}
        self.on_start(trial.number)
        reporter = _PruningReporter(trial, self.iterations) if self.prune else None
        try:
            scored = self.scorer.score(params, self.seed, on_iteration=reporter if not self.scorer.folds else None,
                                       after_fold=reporter.after_fold if reporter and self.scorer.folds else None,
                                       trial=trial.number)
        except Exception as error:
            self.outcomes[trial.number] = ({}, 0.0, f"{type(error).__name__}: {error}", None)
            raise
        if reporter and reporter.pruned_at:
            self.outcomes[trial.number] = (reporter.pruned_at, scored[1] if scored else 0.0, "", None)
            import optuna

            raise optuna.TrialPruned(f"pruned {reporter.where}")
        metrics, fit_s, out_of_fold = scored
        self.outcomes[trial.number] = (metrics, fit_s, "", out_of_fold)
        trial.set_user_attr(studies.METRICS_ATTR, {**metrics, "fit_s": fit_s})
        return metrics["val_rmse"]

    def report(self, study, frozen) -> None:
        from optuna.trial import TrialState

        if is_surplus(frozen):
            study.stop()
            return
        metrics, fit_s, error, out_of_fold = self.outcomes.pop(frozen.number, ({}, 0.0, "", None))
        state = {TrialState.COMPLETE: COMPLETE, TrialState.PRUNED: PRUNED}.get(frozen.state, FAILED)
        if state == FAILED:
            self.own_failures.append(frozen.number)
        self.on_trial(TrialResult(frozen.number, {**frozen.params, **self.fixed}, state, metrics, fit_s,
                                  frozen.datetime_start, frozen.datetime_complete, error,
                                  out_of_fold if state == COMPLETE else None))
        if (self.budget is not None and self.budget.used_up()) or len(self.own_failures) >= self.trials:
            study.stop()


class _PruningReporter:
    """Reports val RMSE to the pruner every few iterations (so the storage is not written for
    every tree) and asks the fit to stop once the pruner says so; in cross-validation, the mean
    RMSE of the folds so far, after each fold."""

    def __init__(self, trial, iterations: int):
        self.trial = trial
        self.every = max(1, iterations // 20)
        self.iterations = iterations
        self.pruned_at: dict[str, float] = {}
        self.where = ""

    def __call__(self, iteration: int, val_rmse: float) -> bool:
        """Whether the fit should go on after `iteration` trees."""
        if iteration % self.every and iteration != self.iterations:
            return True
        return self._go_on(val_rmse, iteration, "pruned_at_iteration", f"at iteration {iteration}")

    def after_fold(self, fold: int, mean_rmse: float) -> bool:
        """Whether cross-validation should go on after `fold` (0-based)."""
        return self._go_on(mean_rmse, fold, "pruned_after_fold", f"after fold {fold}")

    def _go_on(self, val_rmse: float, step: int, step_metric: str, where: str) -> bool:
        self.trial.report(val_rmse, step=step)
        if not self.trial.should_prune():
            return True
        self.pruned_at = {"val_rmse_at_prune": val_rmse, step_metric: step}
        self.where = where
        return False
