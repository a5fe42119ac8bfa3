"""Fit, score and refit one family's models; pure, so tests need no tracking store."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from steps.lib.data.tables import Splits
from steps.lib.model.blending import Bag
from steps.lib.model.metrics import score

if TYPE_CHECKING:
    from steps.lib.families.base import RefitPlan


@dataclass(frozen=True)
class Fitted:
    """A fitted model with the scores that justify it."""

    model: Any
    params: dict[str, Any]
    metrics: dict[str, float]
    fit_s: float
    refit: RefitPlan | None = None  # a final model only: which refit candidate it is, and why


def fit_and_score(family, params: dict[str, Any], splits: Splits, seed: int, on_iteration=None,
                  data=None) -> Fitted:
    """Fit on train and score on val: one tuning evaluation. `data`: the family's `fit_data`,
    built once per step and shared by the trials. `on_iteration(iteration, val_rmse)`, if given,
    follows an iterative fit and may stop it (for pruning)."""
    data = data or family.fit_data(splits)
    model = family.build(params, splits, seed)
    options = family.fit_options(data, on_iteration) if on_iteration else {}
    with family.threads():
        started = time.perf_counter()
        model.fit(data.train_x, data.train_y, **options)
        fit_s = time.perf_counter() - started
        predicted = model.predict(data.val_x)
    return Fitted(model, params, score(data.val_y, predicted, "val"), fit_s)


@dataclass(frozen=True)
class CrossValidated:
    """One candidate scored on every fold: metrics keyed like a holdout evaluation (val_rmse is
    the mean over folds) plus its spread and each fold's RMSE and tree count, and the
    out-of-fold predictions of train+val (each row predicted by the model that did not see it)."""

    params: dict[str, Any]
    metrics: dict[str, float]
    fit_s: float
    out_of_fold: np.ndarray


def cross_validate(family, params: dict[str, Any], folds: list[Splits], seed: int, *, data: list,
                   early_stopping_rounds: int, after_fold=None) -> CrossValidated | None:
    """Fit on each fold's train rows, early-stopped on its held-out rows, and score there: one
    cross-validated tuning evaluation. `data`: each fold's `fit_data`, built once per step.
    `after_fold(fold, mean_rmse_so_far) -> go_on`, if given, may stop after any fold (pruning):
    then None."""
    rows = sum(len(fold.val) for fold in folds)
    out_of_fold = np.full(rows, np.nan)
    scores, fit_s = [], 0.0
    for number, (fold, fold_data) in enumerate(zip(folds, data, strict=True)):
        model = family.build(params, fold, seed)
        with family.threads():
            started = time.perf_counter()
            predicted, trees = family.fit_early_stopped(model, fold_data, early_stopping_rounds)
            fit_s += time.perf_counter() - started
        out_of_fold[fold.val.index.to_numpy()] = predicted
        scores.append({**score(fold_data.val_y, predicted, "val"), "trees": trees})
        mean_rmse = float(np.mean([s["val_rmse"] for s in scores]))
        if after_fold is not None and not after_fold(number, mean_rmse):
            return None
    metrics = {name: float(np.mean([s[name] for s in scores])) for name in ("val_rmse", "val_mae", "val_r2")}
    metrics["val_rmse_std"] = float(np.std([s["val_rmse"] for s in scores]))
    for number, fold_score in enumerate(scores):
        metrics[f"fold_{number}_rmse"] = fold_score["val_rmse"]
        if fold_score["trees"] is not None:
            metrics[f"fold_{number}_trees"] = float(fold_score["trees"])
    return CrossValidated(params, metrics, fit_s, out_of_fold)


def refit_and_test(
    family, params: dict[str, Any], splits: Splits, seed: int, *, max_iterations: int,
    early_stopping_rounds: int, folds: int = 0, final: str = "refit", alternatives: bool = True,
    val_predictions: bool = False, judge_rows: int = 0,
) -> Fitted:
    """The final model, scored on test: family-specific refit parameters (chosen over `folds`
    folds of train+val when given) fit on train+val; or, with `final="bag"` and a family that
    keeps its fold models, those models averaged, with no refit (`params` then say how many).
    `judge_rows`: the training rows the tuning sampled (Family.refit_plan)."""
    x_test, y_test = splits.xy("test")
    with family.threads():
        started = time.perf_counter()
        plan = family.refit_plan(
            params, splits, seed, max_iterations=max_iterations, early_stopping_rounds=early_stopping_rounds,
            folds=folds, alternatives=alternatives, val_predictions=val_predictions, judge_rows=judge_rows,
        )
        if final == "bag" and plan.fold_models:
            model = Bag(plan.fold_models)
            # the other candidates' bags come back too: a blend that picks one needs no new fit
            return Fitted(model, bag_params(plan.params, plan.fold_models),
                          score(y_test, model.predict(x_test), "test"), time.perf_counter() - started,
                          refit=plan)
        model = family.build(plan.params, splits, seed)
        started = time.perf_counter()
        model.fit(*splits.train_val())
        fit_s = time.perf_counter() - started
        predicted = model.predict(x_test)
    # The fold models are not sent back with the plan: they are not the final model.
    return Fitted(model, plan.params, score(y_test, predicted, "test"), fit_s,
                  refit=replace(plan, bags={}))


def bag_params(params: dict[str, Any], fold_models) -> dict[str, Any]:
    """A bag's parameters as logged: its candidate's (with the folds' mean tree count) and how
    many fold models it averages."""
    return {**params, "bag_folds": len(fold_models)}
