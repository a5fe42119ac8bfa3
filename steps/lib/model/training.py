"""Fit, score and refit one family's models; pure, so tests need no tracking store."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from steps.lib.data.tables import Splits
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


def refit_and_test(
    family, params: dict[str, Any], splits: Splits, seed: int, *, max_iterations: int,
    early_stopping_rounds: int,
) -> Fitted:
    """The final model: family-specific refit parameters, fit on train+val, scored on test."""
    x_train_val, y_train_val = splits.train_val()
    x_test, y_test = splits.xy("test")
    with family.threads():
        plan = family.refit_plan(
            params, splits, seed, max_iterations=max_iterations, early_stopping_rounds=early_stopping_rounds
        )
        model = family.build(plan.params, splits, seed)
        started = time.perf_counter()
        model.fit(x_train_val, y_train_val)
        fit_s = time.perf_counter() - started
        predicted = model.predict(x_test)
    return Fitted(model, plan.params, score(y_test, predicted, "test"), fit_s, refit=plan)
