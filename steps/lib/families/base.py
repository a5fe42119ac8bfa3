"""The small interface every model family implements. A family must say how to search it
(`space`) and how to build an unfitted model (`build`); everything else has a default that
means "nothing special": no fixed parameters, nothing to prune, refit with the tuned
parameters, nothing to explain. Adding a family is one new module in this package that
subclasses `Family` and decorates it with `@register`."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field, replace
from importlib.metadata import version
from typing import Any, ClassVar

import pandas as pd

from steps.lib.data.tables import Splits


@dataclass(frozen=True)
class FitData:
    """Train and val data in the form one family's fits take, built once per step and shared by
    every trial: `fit(train_x, train_y)` (train_y None when train_x carries the target, as a
    CatBoost Pool does), `predict(val_x)`, scored against val_y."""

    train_x: Any
    train_y: Any
    val_x: Any
    val_y: pd.Series


@dataclass(frozen=True)
class RefitPlan:
    """What the final train+val fit uses, and why: `kept` names the candidate refit chose
    ("tuned": the tuning's best parameters; a family may weigh others, e.g. CatBoost's own
    defaults), `val_rmse` the early-stopped val RMSE of each candidate it weighed (empty when
    there was nothing to weigh). Logged on the refit run, so a team can see where a model's
    parameters came from."""

    params: dict[str, Any]
    kept: str = "tuned"
    val_rmse: dict[str, float] = field(default_factory=dict)
    # With folds, each candidate weighed: its parameters (no tree count) and its out-of-fold
    # predictions of train+val, so a blend can weigh it beside the tuning's candidates.
    out_of_fold: dict[str, tuple[dict[str, Any], Any]] = field(default_factory=dict, compare=False, repr=False)
    # With folds and a family that keeps them, each weighed candidate's final parameters (its
    # mean tree count) and fold models: a blend that picks one serves that bag, not a new fit.
    bags: dict[str, tuple[dict[str, Any], tuple]] = field(default_factory=dict, compare=False, repr=False)
    # On one holdout split, asked for (`val_predictions`): each weighed candidate's final
    # parameters (its early-stopped count) and its predictions of val, so a blend can weigh it.
    held_out: dict[str, tuple[dict[str, Any], Any]] = field(default_factory=dict, compare=False, repr=False)

    @property
    def fold_models(self) -> tuple:
        """The kept candidate's models early-stopped on each fold (none without folds, or for a
        family that does not keep them): what `final=bag` serves instead of one refit."""
        return self.bags[self.kept][1] if self.kept in self.bags else ()


class Family:
    """A model family: how to search it, build it, refit it and explain it."""

    name: str = ""
    flavor: str = "sklearn"  # the mlflow module that logs it: "sklearn", "catboost", …
    # What serving imports; sklearn-flavored models are stored with skops (no pickle).
    requirements: tuple[str, ...] = ("scikit-learn", "skops", "pandas", "numpy", "scipy")

    # Switches of this family's own, as click options of the refit step (and so of main): each
    # is passed to the constructor under its name; other families never see it.
    refit_options: tuple = ()
    # Parameters worth weighing without tuning (the library's own defaults), for refit's
    # `untuned_families`: where the final model is chosen over folds, a family that was not
    # tuned can still enter the blend, at the cost of one early-stopped fit per fold. None: the
    # family has no such defaults (LASSO's alpha, CatBoost's automatic rate: see try_defaults).
    untuned_params: ClassVar[dict[str, Any] | None] = None

    def __init__(self, *, thread_count: int | None = None):
        # Threads one fit may use; a family that fits single-threaded ignores it.
        self.thread_count = thread_count or os.cpu_count() or 1

    def threads(self) -> contextlib.AbstractContextManager:
        """Holds this family's fits and predictions, in the calling thread, to `thread_count`
        threads. Needed only where the library takes no thread count of its own (OpenMP-based
        ones use every core unless told otherwise); nothing to do for the others."""
        return contextlib.nullcontext()

    def space(self, trial) -> dict[str, Any]:
        """Parameters suggested for one Optuna trial, and nothing else."""
        raise NotImplementedError

    def build(self, params: dict[str, Any], splits: Splits, seed: int):
        """An unfitted scikit-learn-compatible regressor that brings its own preprocessing."""
        raise NotImplementedError

    def fixed_params(self, *, iterations: int) -> dict[str, Any]:
        """Parameters held constant while tuning (logged on every child run); `iterations` is
        the tuning budget per fit for families that fit iteratively."""
        return {}

    def fit_data(self, splits: Splits) -> FitData:
        """Train and val data for the tuning fits; plain frames unless the family can prepare
        them once for all trials (CatBoost builds its Pools once)."""
        x_train, y_train = splits.xy("train")
        x_val, y_val = splits.xy("val")
        return FitData(x_train, y_train, x_val, y_val)

    def fit_options(self, data: FitData, on_iteration) -> dict[str, Any]:
        """Extra `fit` arguments that call `on_iteration(iteration, val_rmse) -> go_on` while
        fitting, so a pruner can stop a bad trial; {} when the family cannot report progress."""
        return {}

    def fit_early_stopped(self, model, data: FitData, rounds: int) -> tuple[Any, int | None]:
        """Fit on train, stopped once val RMSE has not improved for `rounds` iterations (a
        cross-validated trial, on one fold): the val predictions of the model it keeps and how
        many iterations that model has. A family that does not stop early fits as it would
        anyway and reports no iteration count (None)."""
        model.fit(data.train_x, data.train_y)
        return model.predict(data.val_x), None

    def refit_plan(self, params: dict[str, Any], splits: Splits, seed: int, *, max_iterations: int,
                   early_stopping_rounds: int, folds: int = 0, alternatives: bool = True,
                   val_predictions: bool = False, judge_rows: int = 0) -> RefitPlan:
        """Parameters for the final train+val fit (e.g. a tree count chosen by early stopping),
        and which candidate they are when the family weighs several; with `folds`, a family
        that can chooses them over that many folds of train+val instead of on val.
        `alternatives=False`: keep the given parameters, weigh nothing else (a blend member must
        stay the candidate whose out-of-fold predictions earned its weight). `val_predictions`
        (one holdout split): also each candidate's predictions of val, fitted on train, for a
        blend chosen on val; here one fit on train. `judge_rows`: the training rows the tuning
        ran on when it sampled them (0: all), so a family that weighs several candidates on one
        holdout split can weigh them on that sample, where its tuning scores came from, and fit
        only the kept one on every row."""
        plan = RefitPlan(dict(params))
        if folds or not val_predictions:
            return plan
        model = self.build(params, splits, seed).fit(*splits.xy("train"))
        return replace(plan, held_out={"tuned": (dict(params), model.predict(splits.xy("val")[0]))})

    def explain(self, fitted, splits: Splits) -> pd.Series | None:
        """Feature importances or coefficients of a fitted model, indexed by feature and named
        after what they are; None when the family has nothing to show."""
        return None

    def pip_requirements(self) -> list[str]:
        """Exactly what serving the model needs, pinned to what is installed, so logging the
        model skips MLflow's (slow) requirement inference."""
        return [f"{package}=={version(package)}" for package in ("mlflow", *self.requirements)]
